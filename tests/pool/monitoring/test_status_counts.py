"""Deposits (by chain), deliveries and orders by status, as kept by the triggers of migration
0027 (pool.monitoring.status_counts): equal to a full count after inserts, updates and deletes
of one row or many, on both databases; on PostgreSQL two writers never wait on each other's
counter, compaction folds committed transactions only, and concurrent writers with compactions
running beside them stay exact; the migration backfills; a corrupted count is found, reported
and repaired; /metrics reads them."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.migrate import downgrade, upgrade
from pool.kit.tables import address, delivery, deposit, event, status_count, webhook_endpoint
from pool.monitoring.gauges import read_snapshot
from pool.monitoring.status_counts import (
    compact,
    full_count_mismatches,
    kept_status_counts,
    recount,
)
from tests.fixtures.helpers import load_pool


async def assert_kept_equals_full(db: Database, step: str = "") -> None:
    async with db.read() as conn:
        kept = await kept_status_counts(conn)
        assert await full_count_mismatches(conn) == [], step
        deposits = Counter(
            {(c, s): n for c, s, n in await _grouped(conn, deposit.c.chain_id, deposit.c.status)}
        )
        deliveries = Counter({s: n for s, n in await _grouped(conn, delivery.c.status)})
    assert kept.deposits == dict(deposits), step
    assert kept.deliveries == dict(deliveries), step


async def _grouped(conn: AsyncConnection, *columns: Any) -> list[Any]:
    return list((await conn.execute(select(*columns, func.count()).group_by(*columns))).all())


async def _pool(db: Database, count: int) -> list[int]:
    """`count` addresses imported; their ids."""
    await load_pool(db, "evm", count)
    async with db.read() as conn:
        return list((await conn.scalars(select(address.c.id).order_by(address.c.id))).all())


def _deposit(n: int, address_id: int, *, chain: str = "ethereum", status: str = "pending") -> Any:
    return {
        "id": f"dep_{n}",
        "chain_id": chain,
        "tx_hash": f"0x{n:064x}",
        "log_index": 0,
        "block_number": n,
        "block_hash": "0x" + "cd" * 32,
        "from_address": "0x" + "2" * 40,
        "address_id": address_id,
        "token_contract": "0x" + "3" * 40,
        "currency": "USDT",
        "amount": 1_000_000,
        "decimals": 6,
        "status": status,
        "detected_at": utc_now(),
    }


async def _endpoint_and_events(db: Database, events: int) -> None:
    now = utc_now()
    async with db.write() as conn:
        await conn.execute(
            insert(webhook_endpoint).values(
                id="we_1",
                url="https://receiver.example/hook",
                signature_scheme="body",
                secret_encrypted="x",
                enabled=True,
                created_at=now,
                updated_at=now,
            )
        )
        for n in range(1, events + 1):
            await conn.execute(
                insert(event).values(
                    id=f"evt_{n}", type="deposit.confirmed", data={}, created_at=now
                )
            )


def _delivery(n: int, status: str = "pending") -> dict[str, Any]:
    return {
        "id": f"dlv_{n}",
        "event_seq": n,
        "endpoint_id": "we_1",
        "status": status,
        "attempts": 0,
        "created_at": utc_now(),
        "retry_from": utc_now(),
    }


async def test_writes_of_one_row_or_many_keep_the_counts(db: Database) -> None:
    ids = await _pool(db, 3)
    await _endpoint_and_events(db, 6)
    async with db.write() as conn:  # many rows in one statement, two chains
        await conn.execute(insert(deposit), [_deposit(n, ids[n % 3]) for n in range(1, 7)])
        await conn.execute(insert(deposit).values(_deposit(7, ids[0], chain="bsc")))
        await conn.execute(insert(delivery), [_delivery(n) for n in range(1, 6)])
    await assert_kept_equals_full(db, "inserted")

    async with db.write() as conn:
        await conn.execute(
            update(deposit)
            .where(deposit.c.id.in_(["dep_1", "dep_2", "dep_3"]))
            .values(status="confirmed")
        )
        await conn.execute(update(deposit).where(deposit.c.id == "dep_4").values(chain_id="bsc"))
        await conn.execute(update(deposit).where(deposit.c.id == "dep_5").values(amount=7))
        await conn.execute(update(delivery).values(attempts=delivery.c.attempts + 1))
        await conn.execute(
            update(delivery).where(delivery.c.event_seq <= 3).values(status="succeeded")
        )
    await assert_kept_equals_full(db, "updated")

    async with db.write() as conn:
        await conn.execute(delete(deposit).where(deposit.c.chain_id == "bsc"))
        await conn.execute(delete(delivery).where(delivery.c.id == "dlv_5"))
        await conn.execute(insert(delivery).values(_delivery(6, "failed")))
    await assert_kept_equals_full(db, "deleted")
    async with db.read() as conn:
        kept = await kept_status_counts(conn)
    assert kept.deposits == {("ethereum", "confirmed"): 3, ("ethereum", "pending"): 2}
    assert kept.deliveries == {"succeeded": 3, "pending": 1, "failed": 1}


async def test_metrics_gauge_the_kept_counts(db: Database) -> None:
    ids = await _pool(db, 1)
    async with db.write() as conn:
        await conn.execute(
            insert(deposit), [_deposit(n, ids[0], status="completed") for n in (1, 2)]
        )
        # Written around the triggers, as a corruption would be: /metrics says what is kept.
        await conn.execute(
            update(status_count)
            .where(status_count.c.subject == "deposit")
            .values(n=status_count.c.n + 40)
        )
    async with db.read() as conn:
        snapshot = await read_snapshot(conn, now=utc_now())
    assert snapshot.deposits[("ethereum", "completed")] == 42
    async with db.write() as conn:
        await recount(conn)
    await assert_kept_equals_full(db, "recounted")


async def test_a_corrupted_count_is_found_and_a_recount_repairs_it(db: Database) -> None:
    ids = await _pool(db, 1)
    await _endpoint_and_events(db, 2)
    async with db.write() as conn:
        await conn.execute(insert(deposit).values(_deposit(1, ids[0])))
        await conn.execute(insert(delivery), [_delivery(1), _delivery(2, "succeeded")])
        await conn.execute(
            update(status_count)
            .where(status_count.c.subject == "delivery", status_count.c.status == "succeeded")
            .values(n=5)
        )
        await conn.execute(delete(status_count).where(status_count.c.subject == "deposit"))
    async with db.read() as conn:
        found = await full_count_mismatches(conn)
    assert [(m.subject, m.label, m.status, m.kept, m.counted) for m in found] == [
        ("delivery", "", "succeeded", 5, 1),
        ("deposit", "ethereum", "pending", 0, 1),
    ]
    async with db.write() as conn:
        await recount(conn)
    await assert_kept_equals_full(db, "recounted")


async def test_the_migration_backfills_the_counts(db: Database) -> None:
    ids = await _pool(db, 2)
    await _endpoint_and_events(db, 2)
    await downgrade(db, "0026")
    async with db.write() as conn:  # written while nothing keeps the counts
        await conn.execute(insert(deposit), [_deposit(1, ids[0]), _deposit(2, ids[1], chain="bsc")])
        await conn.execute(insert(delivery), [_delivery(1), _delivery(2, "failed")])
    await upgrade(db)
    await assert_kept_equals_full(db, "backfilled")
    async with db.write() as conn:  # and kept from there on
        await conn.execute(update(delivery).values(status="succeeded"))
    await assert_kept_equals_full(db, "after the backfill")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_writers_never_wait_on_each_others_counter(db: Database) -> None:
    """The first transaction holds its counter rows until it commits; a second one, counting
    the same status, goes through meanwhile (a shared counter row would make it wait)."""
    await _endpoint_and_events(db, 2)
    async with db.write() as first:
        await first.execute(insert(delivery).values(_delivery(1)))
        async with db.write() as second:
            await asyncio.wait_for(second.execute(insert(delivery).values(_delivery(2))), 5)
    await assert_kept_equals_full(db, "both committed")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_compaction_folds_committed_transactions_only(db: Database) -> None:
    await _endpoint_and_events(db, 3)
    async with db.write() as conn:
        await conn.execute(insert(delivery).values(_delivery(1)))
    async with db.write() as open_one:
        await open_one.execute(insert(delivery).values(_delivery(2)))
        async with db.write() as conn:
            await compact(conn)
        async with db.read() as conn:
            slots = (await conn.execute(select(status_count.c.slot, status_count.c.n))).all()
        assert slots == [(0, 1)]  # the open transaction's row is not the compaction's to fold
    await assert_kept_equals_full(db, "committed after the compaction")
    async with db.write() as conn:
        await compact(conn)
    async with db.read() as conn:
        slots = (await conn.execute(select(status_count.c.slot, status_count.c.n))).all()
    assert slots == [(0, 2)]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_concurrent_writers_and_compactions_stay_exact(db: Database) -> None:
    events = 240
    await _endpoint_and_events(db, events)
    done = asyncio.Event()

    async def writer(first: int) -> None:
        for n in range(first, events + 1, 8):
            async with db.write() as conn:
                await conn.execute(insert(delivery).values(_delivery(n)))
                if n % 3 == 0:
                    await conn.execute(
                        update(delivery).where(delivery.c.id == f"dlv_{n}").values(status="failed")
                    )
            if n % 5 == 0:
                async with db.write() as conn:
                    await conn.execute(
                        update(delivery)
                        .where(delivery.c.id == f"dlv_{n}")
                        .values(status="succeeded")
                    )

    async def compactor() -> None:
        while not done.is_set():
            async with db.write() as conn:
                await compact(conn)
            await asyncio.sleep(0)

    compacting = [asyncio.create_task(compactor()) for _ in range(2)]
    await asyncio.gather(*(writer(first) for first in range(1, 9)))
    done.set()
    await asyncio.gather(*compacting)
    await assert_kept_equals_full(db, "after the storm")
    async with db.write() as conn:
        await compact(conn)
    async with db.read() as conn:
        slots = set((await conn.scalars(select(status_count.c.slot))).all())
    assert slots == {0}
