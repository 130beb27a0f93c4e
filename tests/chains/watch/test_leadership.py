"""A chain's leadership fences its watcher (invariant 15, docs/design.md): a watcher whose epoch no longer leads
commits nothing, whatever it had in flight; a leader whose lock connection died stops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from chains.rpc import RpcClient
from chains.watch import leadership
from chains.watch.leadership import Leadership, take_leadership
from pool.chain_state import repository as chain_state
from pool.chain_state.repository import StoredBlock, load_cursor, stored_blocks
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import LeadershipLost
from tests.chains.harness import USDT, Harness, chain_config, terminate_lock_backend
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool

DEADLINE = 20.0
BLOCK = StoredBlock(7, "0x" + "07" * 32, "0x" + "06" * 32)
postgresql_only = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


class TakenOverWhileReading(RpcClient):
    """A node whose first log query lets another watcher take the chain's leadership: the range
    being read is then written by a watcher that no longer leads."""

    def __init__(self, url: str, successor: Harness) -> None:
        super().__init__(url)
        self.successor = successor
        self.taken_over = False

    async def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_getLogs" and not self.taken_over:
            self.taken_over = True
            await self.successor.lead()
        return await super().call(method, params)


async def test_a_range_written_after_a_takeover_commits_nothing(
    db: Database, devnet: Devnet
) -> None:
    pool = await load_pool(db, "evm", 5)
    chain = chain_config(devnet)
    successor = Harness(db, devnet, pool, chain)
    stale = Harness(db, devnet, pool, chain, client=TakenOverWhileReading(devnet.url, successor))
    for n in range(3):
        stale.send(await stale.bind(f"user-{n}"), USDT)
    try:
        with pytest.raises(LeadershipLost):
            await stale.poll()
        assert stale.client.taken_over
        assert await stale.deposits() == [] and await stale.events() == []
        async with db.read() as conn:
            cursor = await load_cursor(conn, "devnet")
        assert cursor is not None and cursor.block_number == (chain.start_block or 0) - 1
        assert stale.watcher.leadership.ended.is_set()  # the runner stops polling on it
        # The new leader records every deposit, once.
        await successor.poll()
    finally:
        await stale.client.close()
        await successor.client.close()
    deposits, events = await successor.deposits(), await successor.events()
    assert len(deposits) == 3 and len(set(events)) == len(events)
    assert sorted(e[1] for e in events if e[0] == "deposit.pending") == sorted(
        d["id"] for d in deposits
    )


async def test_every_write_of_a_watcher_that_no_longer_leads_is_refused(db: Database) -> None:
    old = await take_leadership(db, "devnet")
    new = await take_leadership(db, "devnet")
    assert new.epoch == old.epoch + 1
    with pytest.raises(LeadershipLost, match=f"epoch {new.epoch} leads"):
        await save_block_as(old, db)
    assert await blocks(db) == []
    await save_block_as(new, db)
    assert await blocks(db) == [BLOCK]


@postgresql_only
async def test_a_new_leader_waits_for_the_old_leaders_write_in_flight(db: Database) -> None:
    """The old leader's transaction holds the row: it lands before the new epoch, whole."""
    old = await take_leadership(db, "devnet")
    async with old.write(db) as conn:
        await save_block(conn)
        taking = asyncio.create_task(take_leadership(db, "devnet"))
        await waiting_for_a_lock(db)
        assert not taking.done()
    new = await asyncio.wait_for(taking, DEADLINE)
    assert new.epoch == old.epoch + 1 and await blocks(db) == [BLOCK]
    with pytest.raises(LeadershipLost):
        await save_block_as(old, db)


@postgresql_only
async def test_an_old_leader_waits_for_an_increment_in_flight_then_commits_nothing(
    db: Database,
) -> None:
    old = await take_leadership(db, "devnet")
    async with db.write() as conn:
        epoch = await chain_state.take_leadership(
            conn, chain_id="devnet", holder="successor", now=utc_now()
        )
        writing = asyncio.create_task(save_block_as(old, db))
        await waiting_for_a_lock(db)
        assert not writing.done()
    with pytest.raises(LeadershipLost, match=f"epoch {epoch} leads"):
        await asyncio.wait_for(writing, DEADLINE)
    assert await blocks(db) == []


@postgresql_only
async def test_a_leader_frozen_inside_a_write_lets_the_next_one_in(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ends a leader's transaction left idle (a SIGSTOPped process): the next
    leader's increment, which waits for the row, goes through, and the frozen write is lost."""
    monkeypatch.setattr(leadership, "FROZEN_LEADER_TIMEOUT_MS", 300)
    old = await take_leadership(db, "devnet")
    with pytest.raises(DBAPIError):
        async with old.write(db) as conn:
            await save_block(conn)
            new = await asyncio.wait_for(take_leadership(db, "devnet"), DEADLINE)
    assert new.epoch == old.epoch + 1
    assert await blocks(db) == []


@postgresql_only
async def test_a_chain_write_is_planned_for_its_values_and_ended_if_left_idle(
    db: Database,
) -> None:
    """Set by the leadership check itself (no round trip of their own), for that transaction
    only: custom plans (see pool.kit.db.plan_for_given_values) and the frozen-leader timeout."""
    leader = await take_leadership(db, "devnet")
    settings = text(
        "SELECT current_setting('plan_cache_mode'),"
        " current_setting('idle_in_transaction_session_timeout')"
    )
    async with leader.write(db) as conn:
        shown = tuple((await conn.execute(settings)).one())
    assert shown == ("force_custom_plan", f"{leadership.FROZEN_LEADER_TIMEOUT_MS // 1000}s")
    async with db.read() as conn:
        assert (await conn.execute(settings)).one()[0] == "auto"


@postgresql_only
async def test_a_leader_whose_lock_connection_dies_stops_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leadership, "LOCK_CHECK_SECONDS", 0.05)
    stop = asyncio.Event()
    async with leadership.leading(db, "devnet", stop) as leader:
        assert leader is not None and not leader.ended.is_set()
        await terminate_lock_backend(db, "devnet")
        await asyncio.wait_for(leader.ended.wait(), DEADLINE)
        assert leader.lost is not None and "lock" in leader.lost
        # Nobody took over yet, so the epoch would still pass: the leader refuses by itself.
        with pytest.raises(LeadershipLost):
            await save_block_as(leader, db)
    assert await blocks(db) == []
    async with db.read() as conn:
        assert await chain_state.leader(conn, "devnet") == (leader.epoch, leadership.holder_name())
    # The lock went with the connection: electing again works at once.
    async with leadership.leading(db, "devnet", stop) as again:
        assert again is not None and again.epoch == leader.epoch + 1
        stop.set()
        await asyncio.wait_for(again.ended.wait(), DEADLINE)
        assert again.lost is None
    # Released with the lock: nothing more is written under that epoch either.
    with pytest.raises(LeadershipLost, match="released"):
        await save_block_as(again, db)


@postgresql_only
async def test_the_lock_connection_asks_the_server_to_notice_a_vanished_client(
    db: Database,
) -> None:
    """TCP keepalives on the lock's session: a leader whose host went down loses the lock in
    about 25 s, not the two hours of the operating system's default."""
    async with leadership._chain_lock(db, "devnet", asyncio.Event()) as lock:
        assert lock is not None and lock.conn is not None
        shown = [
            await lock.conn.scalar(text(f"SHOW {name}"))
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        ]
    expected = (
        leadership.KEEPALIVE_IDLE_SECONDS,
        leadership.KEEPALIVE_INTERVAL_SECONDS,
        leadership.KEEPALIVE_COUNT,
    )
    assert [int(value.rstrip("s")) for value in shown] == list(expected)


async def test_sqlite_takes_the_epoch_too_and_ends_on_stop(db: Database) -> None:
    stop = asyncio.Event()
    async with leadership.leading(db, "devnet", stop) as leader:
        assert isinstance(leader, Leadership) and leader.epoch == 1
        stop.set()
        await asyncio.wait_for(leader.ended.wait(), DEADLINE)
        assert leader.lost is None


async def save_block(conn: Any) -> None:
    await chain_state.save_blocks(conn, chain_id="devnet", blocks=[BLOCK], keep_from=0)


async def save_block_as(leader: Leadership, db: Database) -> None:
    """One chain write under `leader`'s epoch."""
    async with leader.write(db) as conn:
        await save_block(conn)


async def blocks(db: Database) -> list[StoredBlock]:
    async with db.read() as conn:
        return await stored_blocks(conn, "devnet")


async def waiting_for_a_lock(db: Database) -> None:
    """Until a session of this database waits for a row lock (a task blocked on the row)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        async with db.read() as conn:
            if await conn.scalar(query):
                return
        assert asyncio.get_running_loop().time() < deadline, "nothing waits for the row"
        await asyncio.sleep(0.02)


@postgresql_only
async def test_a_frozen_leaders_lock_ends_and_the_pool_keeps_no_such_session(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock session silent for LOCK_IDLE_TIMEOUT_MS is ended by the server (a frozen leader's
    kernel still answers keepalives); and the lock's connection is closed at the end, never
    handed back to the pool, where that timeout would end it under someone else."""
    monkeypatch.setattr(leadership, "LOCK_IDLE_TIMEOUT_MS", 200)
    async with leadership._chain_lock(db, "devnet", asyncio.Event()) as lock:
        assert lock is not None and lock.conn is not None
        await asyncio.sleep(0.6)  # the leader says nothing on it: frozen
        assert not await lock.still_held()
    async with leadership._chain_lock(db, "devnet", asyncio.Event()) as again:
        assert again is not None and again.conn is not None and await again.still_held()
    await asyncio.sleep(0.6)
    # Every connection the pool holds still works: none carries the lock's idle timeout.
    async with db.read() as first, db.read() as second, db.read() as third:
        for conn in (first, second, third):
            assert await conn.scalar(text("SHOW idle_session_timeout")) == "0"
