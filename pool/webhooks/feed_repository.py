"""SQL of the event feed (`GET /api/v1/events`): the outbox read in `seq` order, and what
PostgreSQL tells about the transactions still writing events (pool/webhooks/feed.py says why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import event


@dataclass(frozen=True, slots=True)
class FeedEvent:
    seq: int
    id: str
    type: str
    data: dict[str, Any]
    created_at: datetime


async def events_between(
    conn: AsyncConnection, *, after: int, up_to: int, types: tuple[str, ...], limit: int
) -> list[FeedEvent]:
    """Events with `after < seq <= up_to` (of `types`, when given), oldest first: a walk of the
    primary key from `after`."""
    query = (
        select(event.c.seq, event.c.id, event.c.type, event.c.data, event.c.created_at)
        .where(event.c.seq > after, event.c.seq <= up_to)
        .order_by(event.c.seq)
        .limit(limit)
    )
    if types:
        query = query.where(event.c.type.in_(types))
    rows = (await conn.execute(query)).all()
    return [FeedEvent(r.seq, r.id, r.type, r.data, r.created_at) for r in rows]


async def newest_seq(conn: AsyncConnection) -> int:
    """The highest `seq` this connection can see (0 for none)."""
    return int(await conn.scalar(select(func.coalesce(func.max(event.c.seq), 0))) or 0)


# The last value the event sequence handed out, to any transaction, committed or not (a
# sequence is not transactional). NULL until the first one.
_LAST_ISSUED = text(
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('event', 'seq')::regclass), 0)"
)

# The transactions, in any session but this one, that hold the lock an INSERT takes on `event`
# (RowExclusiveLock, held until they end). A prepared transaction has no pid: IS DISTINCT FROM
# keeps it. Relation ids are per database, hence the database filter.
_EVENT_WRITERS = text(
    """SELECT virtualtransaction FROM pg_locks
        WHERE locktype = 'relation'
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND relation = 'event'::regclass
          AND mode = 'RowExclusiveLock'
          AND granted
          AND pid IS DISTINCT FROM pg_backend_pid()"""
)


async def last_issued_seq(conn: AsyncConnection) -> int:
    """PostgreSQL: the last `seq` handed out, whether its transaction has committed or not."""
    return int(await conn.scalar(_LAST_ISSUED) or 0)


async def event_writers(conn: AsyncConnection) -> frozenset[str]:
    """PostgreSQL: the virtual transaction ids of the transactions that may be writing events
    now (each holds the lock from the INSERT until it commits or rolls back)."""
    return frozenset(str(v) for v in (await conn.scalars(_EVENT_WRITERS)).all())
