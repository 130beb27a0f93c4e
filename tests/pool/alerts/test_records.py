"""Alert records: one episode per subject, and one transition per opening or closing — however
the alert was raised (one by one, or in a watcher's batch)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import func, select, text

from pool.alerts.notifications_repository import undispatched
from pool.alerts.repository import Firing, fire_alert, fire_alerts, raise_alert, resolve_alert
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import alert, alert_transition


def firing(subject: str) -> Firing:
    return Firing(
        kind="unattributed_deposit", subject=subject, severity="warning", value="1", details=None
    )


async def transitions(db: Database) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(alert.c.subject, alert_transition.c.transition)
            .join(alert, alert.c.id == alert_transition.c.alert_id)
            .order_by(alert_transition.c.id)
        )
        return [(s, t) for s, t in rows.all()]


async def test_batch_and_single_firings_each_open_one_episode_with_one_transition(
    db: Database,
) -> None:
    async with db.write() as conn:
        assert await fire_alert(
            conn, kind="k", subject="a", severity="warning", value=None, details=None, now=utc_now()
        )
    async with db.write() as conn:
        await fire_alerts(conn, firings=[firing("a"), firing("b"), firing("c")], now=utc_now())
    async with db.write() as conn:
        await fire_alerts(conn, firings=[firing("b"), firing("d")], now=utc_now())
        assert await resolve_alert(conn, subject="c", now=utc_now())
        assert not await resolve_alert(conn, subject="c", now=utc_now())
    assert sorted(await transitions(db)) == [
        ("a", "fired"),
        ("b", "fired"),
        ("c", "fired"),
        ("c", "resolved"),
        ("d", "fired"),
    ]
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(alert)) == 4


async def test_a_subject_twice_in_one_batch_opens_one_episode(db: Database) -> None:
    """The second row meets the unique firing-subject index: skipped, as a concurrent opening
    of the same episode would be."""
    async with db.write() as conn:
        await fire_alerts(conn, firings=[firing("e"), firing("e"), firing("f")], now=utc_now())
    assert sorted(await transitions(db)) == [("e", "fired"), ("f", "fired")]
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(alert)) == 2


def pool_low(severity: str, available: int) -> Firing:
    return Firing("pool_low", "pool_low:evm", severity, str(available), {"available": available})


async def test_an_open_episode_follows_its_measure_and_a_severity_change_is_a_transition(
    db: Database,
) -> None:
    start = utc_now()
    moments = [start + timedelta(seconds=n) for n in range(5)]
    async with db.write() as conn:
        assert await raise_alert(conn, firing=pool_low("warning", 2), now=moments[0]) == "fired"
        assert await raise_alert(conn, firing=pool_low("warning", 1), now=moments[1]) is None
        assert await raise_alert(conn, firing=pool_low("critical", 0), now=moments[2]) == (
            "escalated"
        )
        assert await raise_alert(conn, firing=pool_low("critical", 0), now=moments[3]) is None
        assert await raise_alert(conn, firing=pool_low("warning", 3), now=moments[4]) == (
            "deescalated"
        )
    assert await transitions(db) == [
        ("pool_low:evm", "fired"),
        ("pool_low:evm", "escalated"),
        ("pool_low:evm", "deescalated"),
    ]
    async with db.read() as conn:
        row = (await conn.execute(select(alert))).one()
    assert (row.state, row.severity, row.value, row.details) == (
        "firing",
        "warning",
        "3",
        {"available": 3},
    )
    assert (row.first_fired_at, row.last_fired_at) == (moments[0], moments[4])

    # Each hook hears of each transition as it left the alert, whenever it is told.
    async with db.write() as conn:
        told = await undispatched(conn)
    assert [(n.transition, n.alert["severity"], n.alert["value"]) for n in told] == [
        ("fired", "warning", "2"),
        ("escalated", "critical", "0"),
        ("deescalated", "warning", "3"),
    ]


async def test_two_processes_escalating_at_once_write_one_transition(db: Database) -> None:
    """Both saw `warning`; the second's update waits for the first's row lock (PostgreSQL)
    and then finds the severity already changed: one `escalated`, not two."""
    async with db.write() as conn:
        await raise_alert(conn, firing=pool_low("warning", 1), now=utc_now())

    async def escalate() -> str | None:
        async with db.write() as conn:
            return await raise_alert(conn, firing=pool_low("critical", 0), now=utc_now())

    async with db.write() as first:
        assert await raise_alert(first, firing=pool_low("critical", 0), now=utc_now()) == (
            "escalated"
        )
        second = asyncio.create_task(escalate())
        if not db.is_sqlite:  # SQLite's one writer waits at BEGIN: no interleaving to provoke
            await _until_a_query_waits_for_a_lock(db)
    assert await second is None
    assert [t for _, t in await transitions(db)] == ["fired", "escalated"]


async def _until_a_query_waits_for_a_lock(db: Database) -> None:
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    deadline = time.monotonic() + 10
    while True:
        async with db.read() as conn:
            if await conn.scalar(waiting):
                return
        assert time.monotonic() < deadline, "the second escalation never waited for the row"
        await asyncio.sleep(0.02)


async def test_a_stale_measure_neither_undoes_a_newer_one_nor_flaps_the_severity(
    db: Database,
) -> None:
    """Two processes evaluate at once; the one that measured first writes last."""
    start = utc_now()
    async with db.write() as conn:
        await raise_alert(conn, firing=pool_low("warning", 1), now=start)
        newer = start + timedelta(seconds=2)
        assert await raise_alert(conn, firing=pool_low("critical", 0), now=newer) == "escalated"
        older = start + timedelta(seconds=1)
        assert await raise_alert(conn, firing=pool_low("warning", 1), now=older) is None
        row = (await conn.execute(select(alert))).one()
    assert (row.severity, row.value, row.last_fired_at) == ("critical", "0", newer)
    assert [t for _, t in await transitions(db)] == ["fired", "escalated"]
