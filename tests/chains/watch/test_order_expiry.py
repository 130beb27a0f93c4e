"""The expiry worker against a real anvil node and a real database (SQLite and PostgreSQL):
on time across a restart, shared by two workers, and racing the watcher's completion."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from pool.deposits import ledger
from pool.kit.clock import utc_now
from pool.kit.config_sections import OrderSettings
from pool.kit.db import Database
from pool.kit.tables import address, payment_order
from pool.orders.ending import end_order
from pool.orders.expiry import expire_due, run_expiry
from pool.vocabulary import EXPIRED
from tests.chains.harness import USDT, Harness
from tests.fixtures.order_rows import (
    add_order,
    chain_now,
    mine_past,
    order_events,
    order_shown,
    stamp_next_block,
)

ORDERS = OrderSettings(expire_every=0.2)


async def test_an_order_expires_on_time_across_a_restart(
    harness: Harness, database_url: str
) -> None:
    """The worker stops between the window end and the grace end; the next process expires
    the order at its grace end, reading only the database."""
    await harness.poll()
    created = utc_now()
    order_id, _ = await add_order(
        harness.db,
        harness.chain,
        amount=USDT,
        created_at=created,
        window=timedelta(seconds=1),
        grace=timedelta(seconds=2),
    )
    grace_end = created + timedelta(seconds=3)
    first_stop = asyncio.Event()
    first = asyncio.create_task(run_expiry(harness.db, ORDERS, first_stop))
    await asyncio.sleep(1.5)  # past the window end
    first_stop.set()
    await first
    assert (await order_shown(harness.db, order_id))["status"] == "pending"

    restarted = Database(database_url, pool_size=2)
    second_stop = asyncio.Event()
    second = asyncio.create_task(run_expiry(restarted, ORDERS, second_stop))
    try:
        await asyncio.sleep(max(0.0, (grace_end - utc_now()).total_seconds()))
        mine_past(harness.devnet.url, grace_end)  # the chain goes on past the grace end
        await harness.poll()
        for _ in range(50):
            if (await order_shown(harness.db, order_id))["status"] != "pending":
                break
            await asyncio.sleep(0.1)
    finally:
        second_stop.set()
        await second
        await restarted.dispose()
    shown = await order_shown(harness.db, order_id)
    assert shown["status"] == "expired"
    async with harness.db.read() as conn:
        expired_at = (
            await conn.execute(
                select(payment_order.c.expired_at).where(payment_order.c.id == order_id)
            )
        ).scalar_one()
    assert timedelta(0) <= expired_at - grace_end <= timedelta(seconds=2)
    assert [kind for kind, _ in await order_events(harness.db)] == ["order.expired"]


async def test_two_workers_expire_each_order_once(harness: Harness, database_url: str) -> None:
    await harness.poll()
    start = chain_now(harness.devnet.url)
    ids = [
        (
            await add_order(
                harness.db,
                harness.chain,
                amount=USDT,
                created_at=start - timedelta(minutes=20),
            )
        )[0]
        for _ in range(12)
    ]
    mine_past(harness.devnet.url, start)
    await harness.poll()
    other = Database(database_url, pool_size=2)
    try:
        counts = await asyncio.gather(
            expire_due(harness.db, ORDERS, limit=3), expire_due(other, ORDERS, limit=3)
        )
    finally:
        await other.dispose()
    assert sum(counts) == len(ids)
    events = await order_events(harness.db)
    assert sorted(data["orderId"] for _, data in events) == sorted(ids)
    assert {kind for kind, _ in events} == {"order.expired"}


async def test_the_watcher_completing_and_the_worker_expiring_end_the_order_once(
    harness: Harness, database_url: str
) -> None:
    """Both writers at once, on their own connections, several times over: exactly one
    terminal status, one event and one release of the address each time."""
    await harness.poll()
    other = Database(database_url, pool_size=2)
    outcomes = []
    try:
        for round_ in range(4):
            # The same address each round, its orders apart by microseconds within a second.
            start = chain_now(harness.devnet.url) + timedelta(microseconds=round_)
            order_id, to = await add_order(
                harness.db, harness.chain, amount=5 * USDT, created_at=start
            )
            stamp_next_block(harness.devnet.url, start + timedelta(seconds=1))
            harness.send(to, 5 * USDT)
            await harness.poll()
            rows = await harness.deposits()
            [row] = [r for r in rows if r["order_id"] == order_id]
            outcomes.append(
                await _race(harness.db, other, order_id, row, expire_first=round_ % 2 == 1)
            )
    finally:
        await other.dispose()
    events = await order_events(harness.db)
    assert len(events) == 4
    for order_id, status in outcomes:
        mine = [kind for kind, data in events if data["orderId"] == order_id]
        assert mine == [f"order.{status}"]


async def _race(
    watcher_db: Database, worker_db: Database, order_id: str, row: dict, *, expire_first: bool
) -> tuple[str, str]:
    ready = asyncio.Barrier(2) if not watcher_db.is_sqlite else None

    async def confirm() -> None:
        async with watcher_db.write() as conn:
            if ready is not None:
                await ready.wait()
                if expire_first:
                    await asyncio.sleep(0.05)
            await ledger.confirm_deposits(
                conn, verified={row["id"]: row["block_hash"]}, now=utc_now()
            )

    async def expire() -> bool:
        async with worker_db.write() as conn:
            if ready is not None:
                await ready.wait()
                if not expire_first:
                    await asyncio.sleep(0.05)
            return await end_order(
                conn,
                order_id=order_id,
                address_id=row["address_id"],
                status=EXPIRED,
                now=utc_now(),
                cooldown=timedelta(minutes=30),
            )

    await asyncio.gather(confirm(), expire())
    shown = await order_shown(watcher_db, order_id)
    assert shown["status"] in ("completed", "expired")
    async with watcher_db.read() as conn:
        status = (
            await conn.execute(select(address.c.status).where(address.c.id == row["address_id"]))
        ).scalar_one()
    assert status == "available"
    return order_id, str(shown["status"])
