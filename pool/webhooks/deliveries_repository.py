"""SQL for the delivery worker: record attempts, complete deposits, count deliveries (the claims
that lease due deliveries are in pool.webhooks.claims_repository)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import delivery, delivery_attempt, deposit, event
from pool.vocabulary import (
    COMPLETED,
    CONFIRMED,
    DELIVERY_CANCELLED,
    DELIVERY_PENDING,
    DELIVERY_SUCCEEDED,
)
from pool.webhooks.claims_repository import Claimed


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
