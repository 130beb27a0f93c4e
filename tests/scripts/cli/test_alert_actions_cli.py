"""`addrpool alerts ack|silence|unsilence ID --reason …` as an operator runs them: the same
actions as the API, audited with the operator's login as the actor."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from pool.alerts.repository import fire_alert
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import alert, audit_log
from scripts.cli.main import main
from tests.conftest import run_sync


async def _fire(url: str) -> int:
    db = Database(url, pool_size=1)
    try:
        async with db.write() as conn:
            await fire_alert(
                conn, kind="deposit_unattributed", subject="deposit_unattributed:dep_1",
                severity="warning", value="5", details=None, now=utc_now(),
            )  # fmt: skip
            found = await conn.scalar(select(alert.c.id))
    finally:
        await db.dispose()
    return int(found)


async def _audit(url: str) -> list[tuple[str, str, str, dict[str, object]]]:
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(
                    audit_log.c.actor, audit_log.c.action, audit_log.c.subject, audit_log.c.details
                ).order_by(audit_log.c.id)
            )
            return [(a, b, c, d) for a, b, c, d in rows.all()]
    finally:
        await db.dispose()


def test_ack_silence_and_unsilence_from_the_command_line(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [n for n in os.environ if n.startswith("ADDRPOOL_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "addrpool.toml"
    config.write_text("")
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(config))
    monkeypatch.setenv("ADDRPOOL_DATABASE_URL", database_url)
    alert_id = str(run_sync(_fire(database_url)))

    assert main(["alerts", "ack", alert_id, "--reason", "on it", "--json"]) == 0
    acked = json.loads(capsys.readouterr().out)
    assert acked["acknowledgedBy"] == f"cli:{getpass.getuser()}"
    assert main(["alerts", "silence", alert_id, "--minutes", "90", "--reason", "noisy"]) == 0
    assert "silenced until" in capsys.readouterr().out
    assert main(["alerts", "list"]) == 0
    assert "firing (acked, silenced until" in capsys.readouterr().out
    assert main(["alerts", "unsilence", alert_id, "--reason", "quiet now"]) == 0
    capsys.readouterr()
    # Refused: a second acknowledgement, a silence past 30 days, an alert that is not there.
    assert main(["alerts", "ack", alert_id, "--reason", "again"]) != 0
    assert "acknowledged by" in capsys.readouterr().err
    assert main(["alerts", "silence", alert_id, "--minutes", "43201", "--reason", "x"]) != 0
    assert "minutes must be between 1 and 43200" in capsys.readouterr().err
    assert main(["alerts", "ack", "99", "--reason", "x"]) != 0
    assert "Alert 99 not found" in capsys.readouterr().err

    audited = run_sync(_audit(database_url))
    assert [(action, subject, details["reason"]) for _, action, subject, details in audited] == [
        ("alert.acknowledge", alert_id, "on it"),
        ("alert.silence", alert_id, "noisy"),
        ("alert.unsilence", alert_id, "quiet now"),
    ]
    assert {actor for actor, *_ in audited} == {f"cli:{getpass.getuser()}"}
