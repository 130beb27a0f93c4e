"""kill -9 the worker again and again while deposits and reorgs happen: nothing lost, nothing twice.

Two watchers follow the same anvil chain: a reference polled in-process without interruption,
and `addrpool worker` processes killed with SIGKILL at random points — while it scans ranges one
block at a time, confirms, or rolls back a reorg. The chain only changes while no worker runs,
so both watchers see the same chain states; after every step both must have caught up, and at
the end their deposits and their outbox events must be identical.

The suite runs three steps, one of each kind (deposits; a stranger's transfer and dust; a reorg
of the step before), each with two quick kills and one after catching up, on both databases.
`scripts/bench/crash_sweep.py` runs the long sweep: more steps, over several seeds, through
ADDRPOOL_CRASH_STEPS and ADDRPOOL_CRASH_SEED.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pool.chain_state.repository import load_cursor
from pool.deposits.ledger_repository import pending_up_to
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.kit.tables import deposit, event
from scripts.devnet import anvil
from tests.chains.harness import CONFIRMATIONS, USDT, Harness, chain_config
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import import_into_pool, random_evm_address

pytestmark = pytest.mark.server
# Every third step is a reorg: three steps cover each kind once.
STEPS = int(os.environ.get("ADDRPOOL_CRASH_STEPS", "3"))
QUICK_KILLS_PER_STEP = 2
CATCH_UP_DEADLINE = 30.0
SEED = int(os.environ.get("ADDRPOOL_CRASH_SEED", "20261122"))


async def caught_up(db: Database, url: str) -> bool:
    head = anvil.block_number(url)
    async with db.read() as conn:
        cursor = await load_cursor(conn, "devnet")
        if cursor is None or cursor.block_number != head:
            return False
        if cursor.block_hash != anvil.block_hash(url, head):
            return False
        ready = await pending_up_to(conn, chain_id="devnet", block_number=head - CONFIRMATIONS + 1)
        return not ready


async def ledger_of(db: Database) -> tuple[list[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(deposit.c.id, deposit.c.status, deposit.c.block_hash, deposit.c.amount).order_by(
                deposit.c.id
            )
        )
        deposits = [tuple(r) for r in rows.all()]
        events = await conn.execute(select(event.c.type, event.c.data))
        announced = Counter(
            (kind, data.get("depositId"), data.get("status"))
            for kind, data in events.all()
            if kind.startswith("deposit.") and "depositId" in data
        )
    return deposits, announced


class CrashingWorker:
    """`addrpool worker` started and SIGKILLed at random moments until it has caught up."""

    def __init__(
        self,
        tmp_path: Path,
        database_url: str,
        devnet: Devnet,
        start_block: int,
        chain_lines: str = "",  # more of `[chains.devnet]` (the chain's coin, say)
    ) -> None:
        config = tmp_path / "crash.toml"
        config.write_text(
            f'database_url = "{database_url}"\nlog_level = "DEBUG"\n'
            f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\n'
            f"confirmations = {CONFIRMATIONS}\nstart_block = {start_block}\n"
            f"max_block_range = 1\npoll_interval = 0.05\n{chain_lines}"
            f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
            'min_amount = "0.01"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
        self.env = {**env, "ADDRPOOL_CONFIG": str(config)}
        self.log = tmp_path / "worker.log"
        self.kills = 0
        self.kills_mid_work = 0
        self.rng = random.Random(SEED)

    def _start(self) -> subprocess.Popen[bytes]:
        with self.log.open("w") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "scripts.cli.main", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def run_once(self) -> None:
        """Start a worker; SIGKILL it a few milliseconds into its work."""
        process = self._start()
        try:
            self._wait_for_work(process)
            time.sleep(self.rng.uniform(0, 0.05))
            process.send_signal(signal.SIGKILL)
            self.kills += 1
        finally:
            process.wait(timeout=30)

    async def run_until_caught_up(self, db: Database, url: str) -> None:
        """Start a worker, let it catch up however long a loaded machine makes that, kill it."""
        process = self._start()
        try:
            deadline = time.monotonic() + 120
            while not await caught_up(db, url):
                assert process.poll() is None, self.log.read_text()[-3000:]
                assert time.monotonic() < deadline, self.log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            process.send_signal(signal.SIGKILL)
            self.kills += 1
        finally:
            process.wait(timeout=30)

    def _wait_for_work(self, process: subprocess.Popen[bytes]) -> None:
        """Until the watcher logs work (a range, a rollback), or 1.5 s without any."""
        deadline = time.monotonic() + CATCH_UP_DEADLINE
        while "watching devnet" not in self.log.read_text():
            assert process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.01)
        idle_after = time.monotonic() + 3.0
        while time.monotonic() < idle_after:
            text = self.log.read_text()
            if "range scanned" in text or "reorg" in text or "chain moved" in text:
                return
            time.sleep(0.002)


def change_chain(devnet: Devnet, rng: random.Random, bound: list[str], step: int, last: int) -> int:
    """Deposits to bound addresses, strangers and dust, then blocks; every third step first
    reorganises away the `last` blocks of the step before (deposits both watchers have seen).
    Returns how many blocks this step added."""
    start = anvil.block_number(devnet.url)
    if step % 3 == 2:
        anvil.reorg(devnet.url, last)
    for _ in range(rng.randint(1, 3)):
        anvil.transfer(devnet.url, devnet.usdt, rng.choice(bound), rng.randint(1, 50) * USDT)
    if step % 3 == 1:
        anvil.transfer(devnet.url, devnet.usdt, random_evm_address(), USDT)  # not ours
        anvil.transfer(devnet.url, devnet.usdt, rng.choice(bound), 1)  # dust
    anvil.mine(devnet.url, rng.randint(0, CONFIRMATIONS + 1))
    return anvil.block_number(devnet.url) - start


async def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    db: Database, database_url: str, devnet: Devnet, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    reference_db = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    await upgrade(reference_db)
    addresses = [random_evm_address() for _ in range(10)]
    chain = chain_config(devnet)
    reference = Harness(reference_db, devnet, addresses, chain)
    crashed = Harness(db, devnet, addresses, chain)
    worker = CrashingWorker(tmp_path, database_url, devnet, chain.start_block or 0)
    try:
        for target in (reference_db, db):
            await import_into_pool(target, "evm", addresses, actor="crash")
        bound = [await reference.bind(f"r{n}") for n in range(5)]
        assert [await crashed.bind(f"r{n}") for n in range(5)] == bound
        added = 0
        for step in range(STEPS):
            added = change_chain(devnet, rng, bound, step, added)
            while not await caught_up(reference_db, devnet.url):
                await reference.poll()
            for _ in range(QUICK_KILLS_PER_STEP):
                worker.run_once()
                # Killed before it had caught up: the kill cut into its work.
                worker.kills_mid_work += not await caught_up(db, devnet.url)
            # Then let one finish (and kill it too).
            await worker.run_until_caught_up(db, devnet.url)
        reference_ledger = await ledger_of(reference_db)
        crashed_ledger = await ledger_of(db)
    finally:
        await reference.client.close()
        await crashed.client.close()
        await reference_db.dispose()
    deposits, events = reference_ledger
    assert len(deposits) >= STEPS and any(s == "reverted" for _, s, _, _ in deposits)
    assert crashed_ledger[0] == deposits
    assert crashed_ledger[1] == events
    assert worker.kills >= STEPS
    # The quick kills did cut into work: the test exercised what it claims. Not all of them
    # can — a step that added a block or two is caught up by the first range a worker logs —
    # and how many do depends on the machine's speed at that moment (5 of 12 on one loaded run).
    assert worker.kills_mid_work >= STEPS // 2, (worker.kills, worker.kills_mid_work)
