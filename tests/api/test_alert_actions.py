"""An operator acknowledges an alert or silences its subject, through the API: the hooks (a real
HTTP receiver and a real command) stay quiet while silenced and speak again after; every action
is audited with its reason — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from pool.alerts.notifications_repository import notifications_of
from pool.alerts.repository import Firing, fire_alert, fire_alerts, resolve_alert
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.db import Database
from pool.kit.tables import alert, audit_log
from tests.api import test_alerting
from tests.fixtures.helpers import assert_error_response, auth, make_key

alerting = test_alerting.alerting  # the fixture: an app, a notifier, an HTTP and a command hook
SUBJECT = "deposit_unattributed:dep_1"
ALERTS = "/api/v1/alerts"


async def fire(db: Database, subject: str = SUBJECT, severity: str = "warning") -> int:
    async with db.write() as conn:
        await fire_alert(
            conn, kind="deposit_unattributed", subject=subject, severity=severity,
            value="5", details=None, now=utc_now(),
        )  # fmt: skip
        found = await conn.scalar(
            select(alert.c.id).where(alert.c.subject == subject, alert.c.state == "firing")
        )
    return int(found)


async def resolve(db: Database, subject: str = SUBJECT) -> None:
    async with db.write() as conn:
        assert await resolve_alert(conn, subject=subject, now=utc_now())


def shown_now() -> str:
    return isoformat_z(utc_now())


def heard(alerting: Any) -> list[str]:
    """The transitions the HTTP hook was told of, in order."""
    return [json.loads(request[2])["transition"] for request in alerting.hook.requests]


def ran(alerting: Any) -> list[str]:
    """The transitions the command hook was run for, in order."""
    if not alerting.command_log.exists():
        return []
    return [
        json.loads(line)["transition"] for line in alerting.command_log.read_text().splitlines()
    ]


async def act(alerting: Any, key: str, alert_id: int, action: str, **body: Any) -> Any:
    return await alerting.http.post(f"{ALERTS}/{alert_id}/{action}", json=body, headers=auth(key))


async def audit(db: Database) -> list[tuple[str, str, str, dict[str, Any]]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.subject, audit_log.c.details)
            .where(audit_log.c.action.like("alert.%"))
            .order_by(audit_log.c.id)
        )
        return [(a, b, c, d) for a, b, c, d in rows.all()]


async def lapse(db: Database) -> None:
    """The silences in force end now (as if their time had passed)."""
    async with db.write() as conn:
        await conn.execute(
            update(alert)
            .where(alert.c.silenced_until.is_not(None))
            .values(silenced_until=utc_now() - timedelta(seconds=1))
        )


async def test_a_silenced_subject_keeps_its_hooks_quiet_until_the_silence_ends(
    alerting: Any, db: Database, admin_key: str
) -> None:
    operator = await make_key(db, scopes=["console:write"])
    first = await fire(db)
    await alerting.notifier.run_once()
    assert heard(alerting) == ["fired"] and ran(alerting) == ["fired"]

    answer = await act(alerting, operator, first, "silence", reason="flapping", minutes=60)
    assert answer.status_code == 200, answer.text
    shown = answer.json()["data"]
    assert shown["id"] == first and shown["silencedBy"].startswith("key:")
    assert shown["silencedUntil"] > shown["lastFiredAt"]

    # Escalated, resolved, fired again (a new episode), resolved again: not a word.
    await fire(db, severity="critical")
    await resolve(db)
    second = await fire(db)
    assert second != first
    listed = (await alerting.http.get(ALERTS, headers=auth(admin_key))).json()["data"]["alerts"]
    by_id = {a["id"]: a for a in listed}
    assert by_id[second]["state"] == "firing"  # still shown
    assert by_id[second]["silencedUntil"] == shown["silencedUntil"]  # the subject's silence
    await alerting.notifier.run_once()
    await alerting.notifier.run_once()
    assert heard(alerting) == ["fired"] and ran(alerting) == ["fired"]
    async with db.read() as conn:
        told = await notifications_of(conn, first)
    assert [(n["transition"], n["status"]) for n in told if n["hook"] == "ops-http"] == [
        ("fired", "sent"),
        ("escalated", "silenced"),
        ("resolved", "silenced"),
    ]

    # The silence ends with the subject still firing: the hooks hear it once, then as ever.
    await lapse(db)
    await alerting.notifier.run_once()  # lifts the silence, writes the news
    await alerting.notifier.run_once()  # sends it
    assert heard(alerting) == ["fired", "unsilenced"]
    assert ran(alerting) == ["fired", "unsilenced"]
    last = json.loads(alerting.hook.requests[-1][2])
    assert last["text"].startswith("[STILL FIRING] warning: ")
    assert last["alert"]["id"] == second and last["alert"]["silencedUntil"] is None
    await alerting.notifier.run_once()
    assert heard(alerting) == ["fired", "unsilenced"]  # told once
    await resolve(db)
    await alerting.notifier.run_once()
    assert heard(alerting) == ["fired", "unsilenced", "resolved"]


async def test_a_silence_ending_after_a_resolve_tells_the_hooks_nothing(
    alerting: Any, db: Database, admin_key: str
) -> None:
    alert_id = await fire(db)
    assert (await act(alerting, admin_key, alert_id, "silence", reason="x", minutes=5)).is_success
    await resolve(db)
    await alerting.notifier.run_once()
    await lapse(db)
    for _ in range(3):
        await alerting.notifier.run_once()
    assert heard(alerting) == []
    async with db.read() as conn:
        [row] = (await conn.execute(select(alert))).all()
    assert row.silenced_until is None and row.silenced_by is None  # lifted


async def test_a_batch_fired_episode_of_a_silenced_subject_opens_silenced(
    alerting: Any, db: Database, admin_key: str
) -> None:
    """The watcher fires unattributed deposits by the thousand (`fire_alerts`): a subject
    silenced after an earlier episode stays quiet in that path too."""
    earlier = await fire(db)
    await resolve(db)
    silenced = await act(alerting, admin_key, earlier, "silence", reason="known", minutes=30)
    assert silenced.status_code == 200  # a resolved alert's subject may be silenced
    other = "deposit_unattributed:dep_2"
    batch = [Firing("deposit_unattributed", s, "warning", "5", None) for s in (SUBJECT, other)]
    async with db.write() as conn:
        await fire_alerts(conn, firings=batch, now=utc_now())
    await alerting.notifier.run_once()
    assert [json.loads(r[2])["alert"]["subject"] for r in alerting.hook.requests] == [other]
    async with db.read() as conn:
        rows = (await conn.execute(select(alert).where(alert.c.state == "firing"))).all()
    until = {r.subject: r.silenced_until for r in rows}
    assert until[other] is None and until[SUBJECT] is not None


async def test_a_notification_still_being_retried_is_not_sent_once_silenced(
    alerting: Any, db: Database, admin_key: str
) -> None:
    alerting.hook.script[:] = [(503, {}, 0.0), (200, {}, 0.0)]
    alert_id = await fire(db)
    await alerting.notifier.run_once()
    assert len(alerting.hook.requests) == 1  # refused: to be retried
    assert (await act(alerting, admin_key, alert_id, "silence", reason="x", minutes=5)).is_success
    async with db.read() as conn:
        told = {n["hook"]: n["status"] for n in await notifications_of(conn, alert_id)}
    assert told == {"ops-http": "silenced", "ops-command": "sent"}
    await alerting.notifier.run_once()
    assert len(alerting.hook.requests) == 1


async def test_unsilence_lifts_it_now_and_a_firing_alert_is_told_again(
    alerting: Any, db: Database
) -> None:
    operator = await make_key(db, scopes=["console:write"])
    alert_id = await fire(db)
    await act(alerting, operator, alert_id, "silence", reason="deploying", minutes=120)
    await fire(db, severity="critical")
    lifted = await act(alerting, operator, alert_id, "unsilence", reason="deploy done")
    assert lifted.status_code == 200
    shown = lifted.json()["data"]
    assert shown["silencedUntil"] <= shown_now()  # ended: the notifier lifts it on its pass
    await alerting.notifier.run_once()  # judges the escalation silenced, lifts the silence
    await alerting.notifier.run_once()
    assert heard(alerting) == ["unsilenced"]  # the escalation stayed quiet
    async with db.read() as conn:
        assert (await conn.scalar(select(alert.c.silenced_until))) is None
    assert json.loads(alerting.hook.requests[0][2])["alert"]["severity"] == "critical"
    again = await act(alerting, operator, alert_id, "unsilence", reason="again")
    assert_error_response(
        again,
        409,
        error="Conflict",
        code="ALERT_NOT_SILENCED",
        message=f"Alert {alert_id} is not silenced",
    )
    actions = [(action, details["reason"]) for _, action, _, details in await audit(db)]
    assert actions == [("alert.silence", "deploying"), ("alert.unsilence", "deploy done")]


async def test_acknowledge_records_who_and_why_once_per_episode(
    alerting: Any, db: Database, admin_key: str
) -> None:
    operator = await make_key(db, scopes=["console:write"])
    alert_id = await fire(db)
    answer = await act(alerting, operator, alert_id, "acknowledge", reason="  on it  ")
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["acknowledgedAt"] is not None and data["acknowledgedBy"].startswith("key:")
    [(actor, action, subject, details)] = await audit(db)
    assert (actor, action, subject, details) == (
        data["acknowledgedBy"],
        "alert.acknowledge",
        str(alert_id),
        {"reason": "on it"},
    )
    twice = await act(alerting, operator, alert_id, "acknowledge", reason="me too")
    assert twice.status_code == 409 and twice.json()["code"] == "ALERT_ACKNOWLEDGED"
    await alerting.notifier.run_once()
    assert heard(alerting) == ["fired"]  # an acknowledgement changes nothing the hooks hear

    await resolve(db)
    resolved = await act(alerting, operator, alert_id, "acknowledge", reason="late")
    assert resolved.status_code == 409 and resolved.json()["code"] == "ALERT_RESOLVED"
    fresh = await fire(db)  # a new episode starts unacknowledged
    listed = (await alerting.http.get(ALERTS, headers=auth(admin_key))).json()["data"]["alerts"]
    assert {a["id"]: a["acknowledgedAt"] is None for a in listed} == {
        fresh: True,
        alert_id: False,
    }
    assert len(await audit(db)) == 1


@pytest.mark.parametrize("action", ["acknowledge", "silence", "unsilence"])
async def test_each_action_needs_console_write_and_a_known_alert(
    alerting: Any, db: Database, action: str
) -> None:
    alert_id = await fire(db)
    body = {"reason": "r", "minutes": 5}
    for scopes in (["pool:read"], ["console:read"]):
        refused = await act(alerting, await make_key(db, scopes=scopes), alert_id, action, **body)
        assert refused.status_code == 403 and "console:write" in refused.json()["message"]
    unknown = await act(alerting, await make_key(db, scopes=["console:write"]), 999, action, **body)
    assert_error_response(
        unknown, 404, error="NotFound", code="ALERT_NOT_FOUND", message="Alert 999 not found"
    )
    assert await audit(db) == []


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("acknowledge", {}, "reason"),
        ("acknowledge", {"reason": "   "}, "reason"),
        ("acknowledge", {"reason": "x" * 501}, "reason"),
        ("silence", {"reason": "r"}, "minutes"),
        ("silence", {"reason": "r", "minutes": 0}, "minutes"),
        ("silence", {"reason": "r", "minutes": 43_201}, "minutes"),
        ("silence", {"reason": "r", "minutes": "soon"}, "minutes"),
        ("silence", {"minutes": 5}, "reason"),
        ("unsilence", {"reason": ""}, "reason"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    alerting: Any, db: Database, admin_key: str, action: str, body: dict[str, Any], field: str
) -> None:
    alert_id = await fire(db)
    async with db.read() as conn:
        before = dict((await conn.execute(select(alert))).one()._mapping)
    refused = await act(alerting, admin_key, alert_id, action, **body)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["success"] is False and error["code"] == "VALIDATION_FAILED"
    assert any(field in json.dumps(d) for d in error["details"]), error
    async with db.read() as conn:
        after = dict((await conn.execute(select(alert))).one()._mapping)
    assert after == before
    assert await audit(db) == []
