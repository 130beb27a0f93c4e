"""Running the watchers: one active watcher per chain on PostgreSQL, clean stop."""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta

import pytest
from sqlalchemy import text

from chains import endpoints
from chains.watch import leadership, runner
from chains.watch.address_book import AddressBook
from pool.chain_state.repository import load_cursor
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from scripts.devnet import anvil
from tests.fixtures.devnet import Devnet
from tests.fixtures.polling import wait_until_async
from tests.fixtures.server import free_port

DEADLINE = 20.0


def devnet_settings(database_url: str, devnet: Devnet, *rpc_urls: str) -> Settings:
    return Settings(
        database_url=database_url,
        network="testnet",
        chains={
            "devnet": {
                "protocol": "evm",
                "rpc_urls": list(rpc_urls or [devnet.url]),
                "poll_interval": 0.1,
                "start_block": anvil.block_number(devnet.url),
                "tokens": {"USDT": {"contract": devnet.usdt, "decimals": 6}},
            }
        },
    )


async def cursor_exists(db: Database) -> bool:
    async with db.read() as conn:
        return await load_cursor(conn, "devnet") is not None


async def wait_until(check, what: str) -> None:  # noqa: ANN001
    await wait_until_async(check, timeout=DEADLINE, what=what)


async def test_run_watchers_polls_until_stopped(
    db: Database, database_url: str, devnet: Devnet
) -> None:
    settings = devnet_settings(database_url, devnet)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run_watchers(settings, db, stop))
    await wait_until(lambda: cursor_exists(db), "the watcher to start")
    stop.set()
    await asyncio.wait_for(task, DEADLINE)


async def test_nothing_to_watch_returns_at_once(db: Database) -> None:
    await asyncio.wait_for(runner.run_watchers(Settings(), db, asyncio.Event()), 5)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_one_watcher_per_chain_on_postgresql(
    db: Database, database_url: str, devnet: Devnet, monkeypatch
) -> None:
    monkeypatch.setattr(leadership, "STANDBY_RETRY_SECONDS", 0.05)
    settings = devnet_settings(database_url, devnet)
    [chain] = runner.watched_chains(settings)
    stop = asyncio.Event()
    async with db.autocommit() as holder:
        key = leadership.lock_key("devnet")
        assert await holder.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
        standby = asyncio.create_task(runner.watch_forever(chain, db, AddressBook("evm"), stop))
        await asyncio.sleep(0.5)  # several standby retries: none may start watching
        assert not await cursor_exists(db)
        await holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    await wait_until(lambda: cursor_exists(db), "the standby to take over")
    stop.set()
    await asyncio.wait_for(standby, DEADLINE)


def test_settling_the_heap_keeps_startup_objects_out_of_full_collections() -> None:
    gc.unfreeze()
    try:
        built_at_startup = object.__new__(type("Built", (), {}))
        runner.settle_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is built_at_startup for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()


async def test_endpoint_heads_follow_the_chain_and_waits_count_down(
    db: Database, database_url: str, devnet: Devnet, client, monkeypatch
) -> None:
    monkeypatch.setattr(endpoints, "HEALTH_NOTE_SECONDS", 0.2)
    monkeypatch.setattr(endpoints, "FIRST_RETRY_SECONDS", 60.0)  # aside for the whole test
    dead = f"http://127.0.0.1:{free_port()}"
    settings = devnet_settings(database_url, devnet, dead, devnet.url)

    async def shown() -> list[dict]:
        chains = (await client.get("/health")).json()["checks"]["chains"]
        return chains["devnet"]["endpoints"] if "devnet" in chains else []

    async def serving_head_is(target: int) -> bool:
        views = await shown()
        states = [(v["endpoint"], v["state"]) for v in views]
        return states == [(dead, "set_aside"), (devnet.url, "ok")] and views[1]["head"] == target

    stop = asyncio.Event()
    task = asyncio.create_task(runner.run_watchers(settings, db, stop))
    try:
        await wait_until(lambda: serving_head_is(anvil.block_number(devnet.url)), "first write")
        # Nothing changes state from here on; the serving endpoint's head must still follow.
        anvil.mine(devnet.url, 3)
        moved = anvil.block_number(devnet.url)
        await wait_until(lambda: serving_head_is(moved), "the head to follow the chain")
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)

    # The watcher is gone, so nothing writes any more: the dead endpoint's wait counts down.
    first = (await shown())[0]["retryInSeconds"]
    assert 0 < first <= 60

    async def counted_down() -> bool:
        return 0 < (await shown())[0]["retryInSeconds"] < first

    await wait_until(counted_down, "retryInSeconds to count down")
    async with db.read() as conn:
        cursor = await load_cursor(conn, "devnet")
    assert cursor is not None  # `addrpool chains` shows the same count-down
    later = cursor.endpoints_at(utc_now() + timedelta(seconds=30))
    assert later[0]["retryInSeconds"] <= first - 30 + 0.1
    assert cursor.endpoints_at(utc_now() + timedelta(seconds=61))[0]["retryInSeconds"] == 0
