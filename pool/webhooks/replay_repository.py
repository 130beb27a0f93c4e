"""SQL for replaying a range of events to one endpoint (pool.webhooks.replay): its deliveries
of those events sent again, whatever their outcome, and deliveries made for the events it has
none of (those from before it subscribed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from pool.kit.tables import delivery, event, webhook_subscription
from pool.kit.types import UTCDateTime
from pool.vocabulary import DELIVERY_PENDING
from pool.webhooks.events_repository import fan_out

_RANGE = (
    " AND e.id = :endpoint_id AND ev.seq BETWEEN :first_seq AND :last_seq"
    " AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.event_seq = ev.seq"
    " AND d.endpoint_id = e.id)"
)
_INSERT_MISSING = {
    dialect: text(fan_out(dialect, events="event ev", now=":now", where=_RANGE)).bindparams(
        bindparam("now", type_=UTCDateTime())
    )
    for dialect in ("postgresql", "sqlite")
}


def _subscribed(endpoint_id: str) -> Any:
    return select(webhook_subscription.c.event_type).where(
        webhook_subscription.c.endpoint_id == endpoint_id
    )


def _in_range(endpoint_id: str, first_seq: int, last_seq: int) -> list[ColumnElement[bool]]:
    return [
        event.c.seq.between(first_seq, last_seq),
        event.c.type.in_(_subscribed(endpoint_id)),
    ]


async def seq_of(conn: AsyncConnection, event_id: str) -> int | None:
    found = await conn.scalar(select(event.c.seq).where(event.c.id == event_id))
    return None if found is None else int(found)


async def seq_bounds(
    conn: AsyncConnection, *, since: datetime | None, until: datetime | None
) -> tuple[int, int] | None:
    """The first and last event of a time range (`until` excluded)."""
    conditions = []
    if since is not None:
        conditions.append(event.c.created_at >= since)
    if until is not None:
        conditions.append(event.c.created_at < until)
    row = (
        await conn.execute(select(func.min(event.c.seq), func.max(event.c.seq)).where(*conditions))
    ).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


async def count_events(
    conn: AsyncConnection, *, endpoint_id: str, first_seq: int, last_seq: int
) -> int:
    statement = select(func.count()).where(*_in_range(endpoint_id, first_seq, last_seq))
    return int(await conn.scalar(statement) or 0)


async def requeue_range(
    conn: AsyncConnection, *, endpoint_id: str, first_seq: int, last_seq: int, now: datetime
) -> int:
    """The endpoint's deliveries of the range that are not pending, back to pending, due now."""
    events = select(event.c.seq).where(*_in_range(endpoint_id, first_seq, last_seq))
    result = await conn.execute(
        update(delivery)
        .where(
            delivery.c.endpoint_id == endpoint_id,
            delivery.c.status != DELIVERY_PENDING,
            delivery.c.event_seq.in_(events),
        )
        .values(
            status=DELIVERY_PENDING,
            next_attempt_at=now,
            retry_from=now,
            completed_at=None,
        )
    )
    return int(result.rowcount or 0)


async def insert_missing(
    conn: AsyncConnection, *, endpoint_id: str, first_seq: int, last_seq: int, now: datetime
) -> int:
    """Deliveries to the endpoint of the range's events of its types it has none of."""
    parameters = {
        "endpoint_id": endpoint_id,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "now": now,
    }
    result = await conn.execute(_INSERT_MISSING[conn.dialect.name], parameters)
    return int(result.rowcount or 0)
