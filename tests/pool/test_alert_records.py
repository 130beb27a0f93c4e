"""Alert records: one episode per subject, and one transition per opening or closing — however
the alert was raised (one by one, or in a watcher's batch)."""

from __future__ import annotations

from sqlalchemy import func, select

from pool.clock import utc_now
from pool.db import Database
from pool.repository.alerts import Firing, fire_alert, fire_alerts, resolve_alert
from pool.tables import alert, alert_transition


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
