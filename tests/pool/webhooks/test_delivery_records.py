"""Finished attempts written in group-committed batches (pool/webhooks/delivery_records.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import delivery, delivery_attempt
from pool.webhooks import claims_repository as claims
from pool.webhooks import deliveries_repository as repo
from pool.webhooks.delivery_records import AttemptRecorder
from tests.pool.webhooks.test_delivery import emit, endpoint


async def claimed(db: Database, settings: Settings, count: int) -> list[claims.Claimed]:
    endpoint_id, _ = await endpoint(db, settings, "http://127.0.0.1:9/hook", ["deposit.pending"])
    for n in range(count):
        await emit(db, data={"depositId": f"dep_{n}"})
    now = utc_now()
    async with db.write() as conn:
        return await claims.claim_due(
            conn,
            endpoint_id=endpoint_id,
            now=now,
            lease_until=now + timedelta(seconds=60),
            limit=count,
        )


def succeeded(item: claims.Claimed) -> repo.Finished:
    attempt = repo.Attempt(utc_now(), 200, 3, None, "ok")
    return repo.Finished(item, attempt, "succeeded", None)


async def counts(db: Database) -> tuple[int, int]:
    """(succeeded deliveries, attempts recorded)"""
    async with db.read() as conn:
        done = await conn.scalar(
            select(func.count()).select_from(delivery).where(delivery.c.status == "succeeded")
        )
        attempts = await conn.scalar(select(func.count()).select_from(delivery_attempt))
    return int(done or 0), int(attempts or 0)


async def test_attempts_finishing_together_share_a_transaction(
    db: Database, settings: Settings
) -> None:
    items = await claimed(db, settings, 10)
    batches: list[int] = []

    async def after(conn: AsyncConnection, written: list[repo.Finished]) -> None:
        batches.append(len(written))

    recorder = AttemptRecorder(db, after)
    results = await asyncio.gather(*(recorder.record(succeeded(item)) for item in items))
    assert results == [True] * 10
    assert sum(batches) == 10 and len(batches) <= 2  # the first alone, the rest together
    assert await counts(db) == (10, 10)
    async with db.read() as conn:
        row = (await conn.execute(select(delivery).limit(1))).mappings().one()
    assert (row["attempts"], row["last_status_code"], row["next_attempt_at"]) == (1, 200, None)
    assert row["completed_at"] is not None


async def test_one_failing_attempt_does_not_sink_its_batch(
    db: Database, settings: Settings
) -> None:
    items = await claimed(db, settings, 6)
    poisoned = items[3].delivery_id

    async def after(conn: AsyncConnection, written: list[repo.Finished]) -> None:
        if any(f.claimed.delivery_id == poisoned for f in written):
            raise RuntimeError("this one cannot be written")

    recorder = AttemptRecorder(db, after)
    results = await asyncio.gather(
        *(recorder.record(succeeded(item)) for item in items), return_exceptions=True
    )
    assert [isinstance(r, RuntimeError) for r in results] == [i == 3 for i in range(6)]
    assert await counts(db) == (5, 5)  # the poisoned one is left to its lease


async def test_a_cancelled_delivery_gets_nothing_written(db: Database, settings: Settings) -> None:
    [item] = await claimed(db, settings, 1)
    async with db.write() as conn:  # its endpoint was deleted meanwhile
        await conn.execute(update(delivery).values(status="cancelled"))

    async def after(conn: AsyncConnection, written: list[repo.Finished]) -> None:
        assert written == []

    assert await AttemptRecorder(db, after).record(succeeded(item)) is False
    assert await counts(db) == (0, 0)


@pytest.mark.parametrize("status", ["pending", "failed"])
async def test_retry_and_failure_states_are_written(
    db: Database, settings: Settings, status: str
) -> None:
    [item] = await claimed(db, settings, 1)
    attempt = repo.Attempt(utc_now(), 503, 7, None, "busy")
    next_at = attempt.attempted_at + timedelta(seconds=2) if status == "pending" else None

    async def after(conn: AsyncConnection, written: list[repo.Finished]) -> None:
        pass

    finished = repo.Finished(item, attempt, status, next_at)
    assert await AttemptRecorder(db, after).record(finished) is True
    async with db.read() as conn:
        row = (await conn.execute(select(delivery))).mappings().one()
    assert (row["status"], row["attempts"], row["last_status_code"]) == (status, 1, 503)
    assert row["next_attempt_at"] == next_at
    assert (row["completed_at"] is None) == (status == "pending")


async def test_attempts_without_consequences_are_written_alone(
    db: Database, settings: Settings
) -> None:
    """No deposit to complete and no alert: on PostgreSQL one statement outside a transaction;
    the hook is not called, and a cancelled delivery still gets nothing written."""
    items = await claimed(db, settings, 4)
    async with db.write() as conn:
        await conn.execute(
            update(delivery).where(delivery.c.id == items[0].delivery_id).values(status="cancelled")
        )
    hooked: list[int] = []

    async def after(conn: AsyncConnection, written: list[repo.Finished]) -> None:
        hooked.append(len(written))

    recorder = AttemptRecorder(db, after, has_consequences=lambda _: False)
    results = await asyncio.gather(*(recorder.record(succeeded(item)) for item in items))
    assert results == [False, True, True, True]
    if db.dialect == "postgresql":
        assert hooked == []  # SQLite writes in a transaction anyway (its hook then does nothing)
    assert await counts(db) == (3, 3)
