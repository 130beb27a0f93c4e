"""SQL for telling hooks about alert transitions: fan-out, claims with a lease, outcomes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import alert, alert_notification, alert_transition
from pool.kit.types import UTCDateTime

FAN_OUT_BATCH = 100
_LOCK = {"postgresql": "FOR UPDATE SKIP LOCKED", "sqlite": ""}

# As for webhook deliveries: claiming moves the next attempt past a lease, so no other
# worker takes the row while this one sends; a worker that dies leaves it to the next.
_CLAIM = """
UPDATE alert_notification SET next_attempt_at = :lease_until
 WHERE id IN (SELECT id FROM alert_notification
               WHERE status = 'pending' AND next_attempt_at <= :now
               ORDER BY id LIMIT :limit {lock})
RETURNING id
"""
CLAIM = {
    dialect: text(_CLAIM.format(lock=lock)).bindparams(
        bindparam("now", type_=UTCDateTime()), bindparam("lease_until", type_=UTCDateTime())
    )
    for dialect, lock in _LOCK.items()
}


async def has_work(conn: AsyncConnection, *, now: datetime) -> bool:
    """A read that spares SQLite's single writer the idle polls."""
    undispatched_ = select(alert_transition.c.id).where(alert_transition.c.dispatched_at.is_(None))
    due = select(alert_notification.c.id).where(
        alert_notification.c.status == "pending", alert_notification.c.next_attempt_at <= now
    )
    # A silence whose time is over has news for the hooks (pool.alerts.actions_repository).
    expired = select(alert.c.id).where(
        alert.c.silenced_until.is_not(None), alert.c.silenced_until <= now
    )
    found = await conn.scalar(select(undispatched_.exists() | due.exists() | expired.exists()))
    return bool(found)


@dataclass(frozen=True, slots=True)
class Notice:
    """One transition of one alert, as every hook is told of it."""

    transition_id: int
    transition: str  # fired | escalated | deescalated | resolved | unsilenced
    at: datetime
    alert: dict[str, Any]  # as the transition left it


# The transition's own copy of what changes while an episode is open (see pool.kit.tables).
_AS_OF = (
    alert_transition.c.severity.label("as_of_severity"),
    alert_transition.c.value.label("as_of_value"),
    alert_transition.c.details.label("as_of_details"),
)


async def undispatched(conn: AsyncConnection) -> list[Notice]:
    """Transitions no hook has been given yet, oldest first (locked on PostgreSQL)."""
    statement = (
        select(
            alert_transition.c.id,
            alert_transition.c.transition,
            alert_transition.c.at,
            *_AS_OF,
            alert,
        )
        .select_from(alert_transition.join(alert, alert.c.id == alert_transition.c.alert_id))
        .where(alert_transition.c.dispatched_at.is_(None))
        .order_by(alert_transition.c.id)
        .limit(FAN_OUT_BATCH)
    )
    if conn.dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True, of=alert_transition)
    return [_notice(row._mapping) for row in (await conn.execute(statement)).all()]


def _notice(row: Any) -> Notice:
    fields = {c.name: row[c] for c in alert.c}
    if row["as_of_severity"] is not None:  # NULL for the watcher's batch-fired alerts
        for name in ("severity", "value", "details"):
            fields[name] = row[f"as_of_{name}"]
    return Notice(int(row[alert_transition.c.id]), row["transition"], row["at"], fields)


async def dispatch(
    conn: AsyncConnection,
    *,
    notices: Sequence[Notice],
    hooks: Sequence[str],
    now: datetime,
    silenced: Collection[int] = (),
) -> None:
    """One pending notification per (transition, hook); the transitions are done with.
    A transition in `silenced` gets its notifications as `silenced`, never to be sent: what
    each hook was not told stays on record."""
    rows = [
        {
            "transition_id": n.transition_id,
            "hook": hook,
            "status": "silenced" if n.transition_id in silenced else "pending",
            "attempts": 0,
            "next_attempt_at": None if n.transition_id in silenced else now,
            "created_at": now,
        }
        for n in notices
        for hook in hooks
    ]
    if rows:
        await conn.execute(insert(alert_notification), rows)
    await conn.execute(
        update(alert_transition)
        .where(alert_transition.c.id.in_([n.transition_id for n in notices]))
        .values(dispatched_at=now)
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    hook: str
    attempts: int
    created_at: datetime
    notice: Notice


async def claim_due(
    conn: AsyncConnection, *, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    params = {"now": now, "lease_until": lease_until, "limit": limit}
    ids = [row[0] for row in (await conn.execute(CLAIM[conn.dialect.name], params)).all()]
    if not ids:
        return []
    statement = (
        select(
            alert_notification.c.id.label("notification_id"),
            alert_notification.c.hook,
            alert_notification.c.attempts,
            alert_notification.c.created_at.label("notification_created_at"),
            alert_transition.c.id,
            alert_transition.c.transition,
            alert_transition.c.at,
            *_AS_OF,
            alert,
        )
        .select_from(
            alert_notification.join(
                alert_transition, alert_transition.c.id == alert_notification.c.transition_id
            ).join(alert, alert.c.id == alert_transition.c.alert_id)
        )
        .where(alert_notification.c.id.in_(ids))
        .order_by(alert_notification.c.id)
    )
    claimed = []
    for row in (await conn.execute(statement)).all():
        fields = row._mapping
        claimed.append(
            Claimed(
                id=int(fields["notification_id"]),
                hook=str(fields["hook"]),
                attempts=int(fields["attempts"]),
                created_at=fields["notification_created_at"],
                notice=_notice(fields),
            )
        )
    return claimed


async def record_outcome(
    conn: AsyncConnection,
    *,
    notification_id: int,
    status: str,
    attempts: int,
    error: str | None,
    next_attempt_at: datetime | None,
    now: datetime,
) -> None:
    await conn.execute(
        update(alert_notification)
        .where(alert_notification.c.id == notification_id)
        .values(
            status=status,
            attempts=attempts,
            last_error=error,
            next_attempt_at=next_attempt_at,
            sent_at=now if status == "sent" else None,
        )
    )


async def notifications_of(conn: AsyncConnection, alert_id: int) -> list[dict[str, Any]]:
    """What each hook was told about one alert: for the CLI and the tests."""
    rows = await conn.execute(
        select(alert_transition.c.transition, alert_notification)
        .select_from(
            alert_notification.join(
                alert_transition, alert_transition.c.id == alert_notification.c.transition_id
            )
        )
        .where(alert_transition.c.alert_id == alert_id)
        .order_by(alert_notification.c.id)
    )
    return [dict(r._mapping) for r in rows.all()]
