"""The chain's coin through the failures the token path is tested against: kill -9 of the
worker mid-range (every native deposit recorded once after restarts) and a watcher fenced out
by a new leader while it read a range's traces (its native writes refused, the new leader's
recorded once). Both databases.

The kill -9 run is `test_crash_safety`'s, on a chain watching ETH (`tracer = "auto"`: each
restarted worker asks the node again): each step pays pool addresses from accounts
(top-level) and from a contract (internal, one to three recipients in a transaction), every
other step adds a stranger's payment, dust and a payout that reverted inside a successful
transaction, and every third step reorganises the step before away. Three steps in the suite,
one of each kind; `scripts/bench/crash_sweep.py` runs more (ADDRPOOL_CRASH_STEPS and
ADDRPOOL_CRASH_SEED, as for the token path).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from chains.rpc import RpcClient
from pool.chain_state.repository import load_cursor
from pool.kit.db import Database
from pool.kit.errors import LeadershipLost
from pool.kit.migrate import upgrade
from scripts.devnet import anvil
from tests.chains.harness import CONFIRMATIONS, Harness, chain_config
from tests.chains.watch.test_crash_safety import (
    QUICK_KILLS_PER_STEP,
    SEED,
    STEPS,
    CrashingWorker,
    caught_up,
    ledger_of,
)
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import import_into_pool, load_pool, random_evm_address

FINNEY = 10**15  # 0.001 ETH: the chain's minimum below
NATIVE = {"native": True, "native_symbol": "ETH", "native_min_amount": "0.001"}
NATIVE_TOML = 'native = true\nnative_symbol = "ETH"\nnative_min_amount = "0.001"\n'


def pay_in_eth(
    devnet: Devnet, rng: random.Random, payer: str, bound: list[str], step: int, last: int
) -> int:
    """One step of the chain; how many blocks it added (what the next reorg replaces)."""
    url = devnet.url
    start = anvil.block_number(url)
    if step % 3 == 2:
        anvil.reorg(url, last)
    for _ in range(rng.randint(1, 2)):
        anvil.send_value(url, rng.choice(bound), rng.randint(1, 50) * FINNEY)
        recipients = rng.sample(bound, rng.randint(1, 3))
        anvil.pay(url, payer, recipients, [rng.randint(1, 50) * FINNEY for _ in recipients])
    if step % 3 == 1:
        anvil.send_value(url, random_evm_address(), FINNEY)  # not ours
        anvil.pay(url, payer, [rng.choice(bound)], [FINNEY // 10])  # dust
        undone = [rng.choice(bound)]
        anvil.pay(url, payer, undone, [FINNEY], mode=anvil.INNER_REVERT)  # nothing moved
    anvil.mine(url, rng.randint(0, CONFIRMATIONS + 1))
    return anvil.block_number(url) - start


@pytest.mark.server
async def test_kill_9_mid_range_records_every_native_deposit_once(
    db: Database, database_url: str, devnet: Devnet, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    payer = anvil.deploy_payer(devnet.url)  # below the chain's start: never reorganised away
    reference_db = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    await upgrade(reference_db)
    addresses = [random_evm_address() for _ in range(10)]
    chain = chain_config(devnet, **NATIVE)
    reference = Harness(reference_db, devnet, addresses, chain)
    start = chain.start_block or 0
    worker = CrashingWorker(tmp_path, database_url, devnet, start, chain_lines=NATIVE_TOML)
    try:
        for target in (reference_db, db):
            await import_into_pool(target, "evm", addresses, actor="crash")
        bound = [await reference.bind(f"r{n}") for n in range(5)]
        assert [await Harness(db, devnet, [], chain).bind(f"r{n}") for n in range(5)] == bound
        added = 0
        for step in range(STEPS):
            added = pay_in_eth(devnet, rng, payer, bound, step, added)
            while not await caught_up(reference_db, devnet.url):
                await reference.poll()
            for _ in range(QUICK_KILLS_PER_STEP):
                worker.run_once()
                worker.kills_mid_work += not await caught_up(db, devnet.url)
            await worker.run_until_caught_up(db, devnet.url)
        reference_ledger = await ledger_of(reference_db)
        crashed_ledger = await ledger_of(db)
        seen = [(r["trace_position"], r["status"], r["amount"]) for r in await reference.deposits()]
    finally:
        await reference.client.close()
        await reference_db.dispose()
    deposits, events = reference_ledger
    assert {"tx", "tx.0", "tx.1"} <= {position for position, _, _ in seen}
    assert {"reverted", "confirmed"} <= {status for _, status, _ in seen}
    assert FINNEY // 10 in {amount for _, _, amount in seen}  # the dust, reorganised away
    assert crashed_ledger[0] == deposits
    assert crashed_ledger[1] == events
    assert worker.kills >= STEPS and worker.kills_mid_work >= 1, (worker.kills_mid_work,)


class TakenOverWhileTracing(RpcClient):
    """A node whose first trace of a block lets another watcher take the chain's leadership:
    the range being read is then written by a watcher that no longer leads."""

    def __init__(self, url: str, successor: Harness) -> None:
        super().__init__(url)
        self.successor = successor
        self.taken_over = False

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        traced = any(method == "debug_traceBlockByNumber" for method, _ in calls)
        if traced and not self.taken_over:
            self.taken_over = True
            await self.successor.lead()
        return await super().batch(calls)


async def test_a_fenced_leaders_native_deposits_are_refused_and_the_new_leaders_kept(
    db: Database, devnet: Devnet
) -> None:
    pool = await load_pool(db, "evm", 5)
    chain = chain_config(devnet, tracer="debug", **NATIVE)
    successor = Harness(db, devnet, pool, chain)
    stale = Harness(db, devnet, pool, chain, client=TakenOverWhileTracing(devnet.url, successor))
    payer = anvil.deploy_payer(devnet.url)
    bound = [await stale.bind(f"user-{n}") for n in range(4)]
    top = anvil.send_value(devnet.url, bound[0], 5 * FINNEY)
    inner = anvil.pay(devnet.url, payer, bound[1:], [FINNEY * 2] * 3)
    try:
        with pytest.raises(LeadershipLost):
            await stale.poll()
        assert stale.client.taken_over
        assert await stale.deposits() == [] and await stale.events() == []
        async with db.read() as conn:
            cursor = await load_cursor(conn, "devnet")
        assert cursor is not None and cursor.block_number == (chain.start_block or 0) - 1
        assert stale.watcher.leadership.ended.is_set()
        await successor.poll()
        successor.mine(CONFIRMATIONS)  # something to write: new blocks, confirmations
        with pytest.raises(LeadershipLost):  # fenced for good: its next poll writes nothing
            await stale.poll()
        assert {d["status"] for d in await successor.deposits()} == {"pending"}
        await successor.poll()
    finally:
        await stale.client.close()
        await successor.client.close()
    deposits = await successor.deposits()
    assert sorted((d["tx_hash"], d["trace_position"]) for d in deposits) == sorted(
        [(top, "tx"), (inner, "tx.0"), (inner, "tx.1"), (inner, "tx.2")]
    )
    assert {d["status"] for d in deposits} == {"confirmed"}
    events = await successor.events()
    assert len(set(events)) == len(events)
    for kind in ("deposit.pending", "deposit.confirmed"):
        assert sorted(e[1] for e in events if e[0] == kind) == sorted(d["id"] for d in deposits)
