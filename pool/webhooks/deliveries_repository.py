"""SQL for the delivery worker: claim due deliveries, record attempts, complete deposits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    column,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import delivery, delivery_attempt, deposit, event, webhook_endpoint
from pool.kit.types import UTCDateTime
from pool.vocabulary import (
    COMPLETED,
    CONFIRMED,
    DELIVERY_CANCELLED,
    DELIVERY_PENDING,
    DELIVERY_SUCCEEDED,
)

# A claim leases the row: its next attempt moves past the lease, so no other worker takes it
# while this one tries (the lease outlasts any request). A worker that dies mid-attempt leaves
# the row to be claimed again when the lease ends: at least once, never twice at a time.
# SQLite: its single writer (BEGIN IMMEDIATE) is the lock.
CLAIM_SQLITE = text(
    """
UPDATE delivery SET next_attempt_at = :lease_until
 WHERE id IN (SELECT id FROM delivery
               WHERE status = 'pending' AND next_attempt_at <= :now
                 AND endpoint_id = :endpoint_id
               ORDER BY next_attempt_at LIMIT :limit)
RETURNING id
"""
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("lease_until", type_=UTCDateTime()))


# PostgreSQL claims for every endpoint at once, each up to its room, and reads the details in
# the same statement: one round trip per round, atomic by itself (no BEGIN and COMMIT either).
# On a loaded machine each round trip to the server costs milliseconds. `= ANY(ARRAY(...))`
# keeps the update on the primary key (an IN join was planned as a scan of the whole table).
_CLAIM_FOR_ENDPOINTS = """
WITH wanted AS (
  SELECT * FROM unnest(CAST(:endpoint_ids AS text[]), CAST(:rooms AS int[]))
    AS w(endpoint_id, room)
), claimed AS (
  UPDATE delivery SET next_attempt_at = :lease_until
   WHERE id = ANY(ARRAY(
     SELECT d.id FROM wanted w CROSS JOIN LATERAL (
       SELECT id FROM delivery
        WHERE status = 'pending' AND next_attempt_at <= :now AND endpoint_id = w.endpoint_id
        ORDER BY next_attempt_at LIMIT w.room FOR UPDATE SKIP LOCKED) d))
  RETURNING id, attempts, retry_from, event_seq, endpoint_id
)
SELECT c.id AS delivery_id, c.attempts, c.retry_from, e.seq AS event_seq, e.id AS event_id,
       e.type AS event_type, e.data AS event_data, e.created_at AS event_created_at,
       w.id AS endpoint_id, w.url, w.signature_scheme, w.secret_encrypted,
       w.previous_secret_encrypted, w.previous_secret_expires_at
  FROM claimed c
  JOIN event e ON e.seq = c.event_seq
  JOIN webhook_endpoint w ON w.id = c.endpoint_id
 ORDER BY e.seq
"""
CLAIM_FOR_ENDPOINTS = (
    text(_CLAIM_FOR_ENDPOINTS)
    .bindparams(
        bindparam("now", type_=UTCDateTime()),
        bindparam("lease_until", type_=UTCDateTime()),
        bindparam("endpoint_ids", type_=ARRAY(String)),
        bindparam("rooms", type_=ARRAY(Integer)),
    )
    .columns(
        column("delivery_id", String),
        column("attempts", Integer),
        column("retry_from", UTCDateTime),
        column("event_seq", BigInteger),
        column("event_id", String),
        column("event_type", String),
        column("event_data", JSON),
        column("event_created_at", UTCDateTime),
        column("endpoint_id", String),
        column("url", Text),
        column("signature_scheme", String),
        column("secret_encrypted", Text),
        column("previous_secret_encrypted", Text),
        column("previous_secret_expires_at", UTCDateTime),
    )
)


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: str
    attempts: int
    retry_from: datetime
    event_seq: int
    event_id: str
    event_type: str
    event_data: dict[str, Any]
    event_created_at: datetime
    endpoint_id: str
    url: str
    signature_scheme: str
    secret_encrypted: str
    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None
    lease_until: datetime | None = None  # our claim's token: next_attempt_at as we set it


# What a sender needs of each claimed delivery; built once (bind parameters, not per call).
_CLAIMED_DETAILS = (
    select(
        delivery.c.id,
        delivery.c.attempts,
        delivery.c.retry_from,
        event.c.seq,
        event.c.id,
        event.c.type,
        event.c.data,
        event.c.created_at,
        webhook_endpoint.c.id,
        webhook_endpoint.c.url,
        webhook_endpoint.c.signature_scheme,
        webhook_endpoint.c.secret_encrypted,
        webhook_endpoint.c.previous_secret_encrypted,
        webhook_endpoint.c.previous_secret_expires_at,
    )
    .select_from(
        delivery.join(event, event.c.seq == delivery.c.event_seq).join(
            webhook_endpoint, webhook_endpoint.c.id == delivery.c.endpoint_id
        )
    )
    .where(delivery.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(event.c.seq)  # sent in the order the events happened
)


async def renew_lease(
    conn: AsyncConnection, *, delivery_id: str, held_until: datetime, new_until: datetime
) -> bool:
    """Compare-and-set on the lease: True only if our claim still stands (nobody took the row
    after it ran out while we queued behind the endpoint's other deliveries)."""
    result = await conn.execute(
        update(delivery)
        .where(
            delivery.c.id == delivery_id,
            delivery.c.status == DELIVERY_PENDING,
            delivery.c.next_attempt_at == held_until,
        )
        .values(next_attempt_at=new_until)
    )
    return result.rowcount == 1


async def endpoints_due(conn: AsyncConnection, *, now: datetime) -> list[str]:
    rows = await conn.execute(
        select(delivery.c.endpoint_id)
        .where(delivery.c.status == DELIVERY_PENDING, delivery.c.next_attempt_at <= now)
        .distinct()
    )
    return [str(row[0]) for row in rows.all()]


async def claim_due(
    conn: AsyncConnection,
    *,
    endpoint_id: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
) -> list[Claimed]:
    """Lease up to `limit` due deliveries of one endpoint (each endpoint claims only what it
    has room for, so a dead one cannot fill the worker with its backlog)."""
    rooms = {endpoint_id: limit}
    return await claim_for_endpoints(conn, rooms=rooms, now=now, lease_until=lease_until)


async def claim_for_endpoints(
    conn: AsyncConnection, *, rooms: Mapping[str, int], now: datetime, lease_until: datetime
) -> list[Claimed]:
    """Lease due deliveries of each endpoint in `rooms`, up to its room. PostgreSQL: one
    statement for all of them; SQLite: one endpoint after another (it has one writer anyway)."""
    if not rooms:
        return []
    if conn.dialect.name == "postgresql":
        params = {
            "endpoint_ids": list(rooms),
            "rooms": list(rooms.values()),
            "now": now,
            "lease_until": lease_until,
        }
        found = await conn.execute(CLAIM_FOR_ENDPOINTS, params)
        return [replace(Claimed(*tuple(row)), lease_until=lease_until) for row in found.all()]
    claimed: list[Claimed] = []
    for endpoint_id, room in rooms.items():
        claimed += await _claim_sqlite(conn, endpoint_id, room, now, lease_until)
    return claimed


async def _claim_sqlite(
    conn: AsyncConnection, endpoint_id: str, limit: int, now: datetime, lease_until: datetime
) -> list[Claimed]:
    params = {"now": now, "lease_until": lease_until, "limit": limit, "endpoint_id": endpoint_id}
    ids = [row[0] for row in (await conn.execute(CLAIM_SQLITE, params)).all()]
    if not ids:
        return []
    rows = await conn.execute(_CLAIMED_DETAILS, {"ids": ids})
    return [replace(Claimed(*tuple(row)), lease_until=lease_until) for row in rows.all()]


@dataclass(frozen=True, slots=True)
class Attempt:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None


@dataclass(frozen=True, slots=True)
class Finished:
    """One attempt as it ended, and what it makes of its delivery."""

    claimed: Claimed
    attempt: Attempt
    status: str  # succeeded, pending (to retry at next_attempt_at) or failed
    next_attempt_at: datetime | None


# Built once, executed with bind parameters: a batch costs three statements, whatever its size.
_STILL_PENDING = (
    select(delivery.c.id)
    .where(
        delivery.c.id.in_(bindparam("ids", expanding=True)), delivery.c.status == DELIVERY_PENDING
    )
    .with_for_update()  # PostgreSQL: nobody cancels them between this and the update
)
_RECORD = (
    update(delivery)
    .where(delivery.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_attempt_at=bindparam("b_last_attempt_at"),
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        completed_at=bindparam("b_completed_at"),
    )
)
_INSERT_ATTEMPT = insert(delivery_attempt)


# PostgreSQL: the whole batch in one statement (arrays in, unnested), atomic by itself.
_RECORD_ALL = text(
    """
WITH input AS (
  SELECT * FROM unnest(
    CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:attempts AS int[]),
    CAST(:next_attempt_at AS timestamptz[]), CAST(:attempted_at AS timestamptz[]),
    CAST(:status_codes AS int[]), CAST(:latency_ms AS int[]), CAST(:errors AS text[]),
    CAST(:bodies AS text[]), CAST(:completed_at AS timestamptz[])
  ) AS i(id, status, attempts, next_attempt_at, attempted_at, status_code, latency_ms, error,
         response_body, completed_at)
), updated AS (
  UPDATE delivery d
     SET status = i.status, attempts = i.attempts, next_attempt_at = i.next_attempt_at,
         last_attempt_at = i.attempted_at, last_status_code = i.status_code,
         last_error = i.error, completed_at = i.completed_at
    FROM input i
   WHERE d.id = i.id AND d.status = 'pending'
  RETURNING d.id
), inserted AS (
  INSERT INTO delivery_attempt
         (delivery_id, attempted_at, status_code, latency_ms, error, response_body)
  SELECT i.id, i.attempted_at, i.status_code, i.latency_ms, i.error, i.response_body
    FROM input i JOIN updated u ON u.id = i.id
)
SELECT id FROM updated
"""
).bindparams(
    bindparam("ids", type_=ARRAY(String)),
    bindparam("statuses", type_=ARRAY(String)),
    bindparam("attempts", type_=ARRAY(Integer)),
    bindparam("next_attempt_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("attempted_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("status_codes", type_=ARRAY(Integer)),
    bindparam("latency_ms", type_=ARRAY(Integer)),
    bindparam("errors", type_=ARRAY(Text)),
    bindparam("bodies", type_=ARRAY(Text)),
    bindparam("completed_at", type_=ARRAY(DateTime(timezone=True))),
)


async def record_attempts(conn: AsyncConnection, finished: Sequence[Finished]) -> list[Finished]:
    """Write the attempts and their deliveries' new states; returns those written. A delivery
    no longer pending (endpoint deleted: cancelled) gets nothing written. On PostgreSQL this is
    one statement, so it may run outside a transaction (autocommit)."""
    if not finished:
        return []
    if conn.dialect.name == "postgresql":
        return await _record_all_postgresql(conn, finished)
    ids = [f.claimed.delivery_id for f in finished]
    pending = set((await conn.execute(_STILL_PENDING, {"ids": ids})).scalars().all())
    written = [f for f in finished if f.claimed.delivery_id in pending]
    if written:
        await conn.execute(_RECORD, [_delivery_values(f) for f in written])
        await conn.execute(_INSERT_ATTEMPT, [_attempt_values(f) for f in written])
    return written


async def _record_all_postgresql(
    conn: AsyncConnection, finished: Sequence[Finished]
) -> list[Finished]:
    rows = [_delivery_values(f) | _attempt_values(f) for f in finished]
    params = {
        "ids": [r["b_id"] for r in rows],
        "statuses": [r["b_status"] for r in rows],
        "attempts": [r["b_attempts"] for r in rows],
        "next_attempt_at": [r["b_next_attempt_at"] for r in rows],
        "attempted_at": [r["attempted_at"] for r in rows],
        "status_codes": [r["status_code"] for r in rows],
        "latency_ms": [r["latency_ms"] for r in rows],
        "errors": [r["error"] for r in rows],
        "bodies": [r["response_body"] for r in rows],
        "completed_at": [r["b_completed_at"] for r in rows],
    }
    written = set((await conn.execute(_RECORD_ALL, params)).scalars().all())
    return [f for f in finished if f.claimed.delivery_id in written]


def _delivery_values(finished: Finished) -> dict[str, Any]:
    attempt = finished.attempt
    final = finished.status != DELIVERY_PENDING
    return {
        "b_id": finished.claimed.delivery_id,
        "b_status": finished.status,
        "b_attempts": finished.claimed.attempts + 1,
        "b_next_attempt_at": finished.next_attempt_at,
        "b_last_attempt_at": attempt.attempted_at,
        "b_last_status_code": attempt.status_code,
        "b_last_error": attempt.error,
        "b_completed_at": attempt.attempted_at if final else None,
    }


def _attempt_values(finished: Finished) -> dict[str, Any]:
    attempt = finished.attempt
    return {
        "delivery_id": finished.claimed.delivery_id,
        "attempted_at": attempt.attempted_at,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "response_body": attempt.response_body,
    }


async def unfinished_deliveries(conn: AsyncConnection, *, event_seq: int) -> int:
    """Deliveries of an event not (yet) succeeded; cancelled ones (deleted endpoint) aside.

    The event row is locked first (PostgreSQL): two workers recording the event's last two
    deliveries at once would each see the other's as still pending and neither would complete
    the deposit; locked, the second waits and then counts the first's committed update."""
    await conn.execute(select(event.c.seq).where(event.c.seq == event_seq).with_for_update())
    count = await conn.scalar(
        select(func.count())
        .select_from(delivery)
        .where(
            delivery.c.event_seq == event_seq,
            delivery.c.status.notin_((DELIVERY_SUCCEEDED, DELIVERY_CANCELLED)),
        )
    )
    return int(count or 0)


async def complete_deposit(conn: AsyncConnection, *, deposit_id: str, now: datetime) -> bool:
    result = await conn.execute(
        update(deposit)
        .where(deposit.c.id == deposit_id, deposit.c.status == CONFIRMED)
        .values(status=COMPLETED, completed_at=now)
    )
    return result.rowcount == 1


async def count_deliveries_by_status(conn: AsyncConnection) -> dict[str, int]:
    """Status → how many deliveries: the metrics' delivery gauge."""
    # Grouping on the leading column of ix_delivery_due lets PostgreSQL count from the index.
    statement = select(delivery.c.status, func.count()).group_by(delivery.c.status)
    return {status: int(n) for status, n in (await conn.execute(statement))}
