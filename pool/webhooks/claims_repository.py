"""SQL for the delivery worker's claims: lease due deliveries, per endpoint up to its room, with
what sending them needs; renew a lease while a delivery waits its turn."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    String,
    Text,
    bindparam,
    column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import delivery, event, webhook_endpoint
from pool.kit.types import UTCDateTime
from pool.vocabulary import DELIVERY_PENDING

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
