"""Two `addrpool worker` processes on one chain (invariant 15, docs/design.md): the leader's lock connection is
killed while deposits arrive; exactly one of them writes at any time.

Each worker logs every range it commits, after the commit, with its leadership epoch. Ranges of
one block each, from both logs, must tile the chain exactly once — no block written twice (two
writers), none skipped — with epochs that never go down along the chain. The deposits must be
exactly the transfers made on anvil, each announced once, and the cursor, sampled all along,
must never go backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from pool.chain_state import repository as chain_state
from pool.kit.db import Database
from pool.kit.tables import deposit, event
from scripts.devnet import anvil
from tests.chains.harness import CONFIRMATIONS, USDT, Harness, chain_config, terminate_lock_backend
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool

pytestmark = [
    pytest.mark.server,
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
]
DEADLINE = 60.0
RANGES_PER_STEP = 3
LOST = "leadership lost: writing nothing more for this chain"
STANDBY = "standby: another worker watches this chain"


@dataclass(frozen=True, slots=True)
class Written:
    start: int
    end: int
    epoch: int
    worker: str


class Worker:
    """`addrpool worker` with its own JSON log file."""

    def __init__(self, name: str, tmp_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = tmp_path / f"{name}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scripts.cli.main", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text()

    def entries(self, after: int = 0) -> list[dict[str, Any]]:
        found = []
        for line in self.text()[after:].splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):  # the line being written right now
                    found.append(json.loads(line))
        return found

    def said(self, message: str, after: int = 0) -> bool:
        return any(e["msg"] == message for e in self.entries(after))

    def written(self, after: int = 0) -> list[Written]:
        return [
            Written(e["block_from"], e["block_to"], e["epoch"], self.name)
            for e in self.entries(after)
            if e["msg"] == "range scanned"
        ]

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process ignores SIGTERM
            self.process.kill()
            self.process.wait(timeout=DEADLINE)


class Deposits:
    """Transfers to bound pool addresses, one every ~50 ms, from a thread, until stopped."""

    def __init__(self, devnet: Devnet, recipients: list[str]) -> None:
        self.devnet = devnet
        self.recipients = recipients
        self.sent: list[str] = []
        self.failure: BaseException | None = None
        self.rng = random.Random(15)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self) -> None:
        try:
            while not self.done.wait(0.05):
                to = self.rng.choice(self.recipients)
                amount = self.rng.randint(1, 50) * USDT
                # anvil mines it before answering; its hash is known even if the receipt is slow
                tx = anvil.transfer(self.devnet.url, self.devnet.usdt, to, amount, wait=False)
                self.sent.append(tx)
        except BaseException as exc:  # reported by stop(), in the test's own thread
            self.failure = exc

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=DEADLINE)
        assert self.failure is None, f"sending a transfer failed: {self.failure!r}"


class Scene:
    """Worker A leading the devnet chain, worker B standing by, deposits arriving."""

    def __init__(self, db: Database, database_url: str, devnet: Devnet, tmp_path: Path) -> None:
        self.db = db
        self.devnet = devnet
        self.chain = chain_config(devnet)
        self.tmp_path = tmp_path
        self.env = worker_env(tmp_path, database_url, devnet, self.chain.start_block or 0)
        self.cursors: list[int] = []
        self.workers: list[Worker] = []

    async def start(self) -> tuple[Worker, Worker, Deposits]:
        harness = Harness(self.db, self.devnet, await load_pool(self.db, "evm", 10), self.chain)
        bound = [await harness.bind(f"user-{n}") for n in range(5)]
        a = self._worker("a")
        await self.until(lambda: a.said("leading the chain"), "worker A to lead")
        b = self._worker("b")
        await self.until(lambda: b.said(STANDBY), "worker B to stand by")
        return a, b, Deposits(self.devnet, bound)

    def _worker(self, name: str) -> Worker:
        self.workers.append(Worker(name, self.tmp_path, self.env))
        return self.workers[-1]

    async def until(self, check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
        """Poll `check` with a deadline, sampling the cursor each time round."""
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while True:
            await self._sample_cursor()
            outcome = check()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            for worker in self.workers:
                assert worker.process.poll() is None, (
                    f"worker {worker.name} exited:\n" + (worker.text()[-3000:])
                )
            assert asyncio.get_running_loop().time() < deadline, f"waiting for {what}"
            await asyncio.sleep(0.05)

    async def _sample_cursor(self) -> None:
        async with self.db.read() as conn:
            cursor = await chain_state.load_cursor(conn, "devnet")
        if cursor is not None:
            self.cursors.append(cursor.block_number)

    async def led_by(self, worker: Worker) -> bool:
        async with self.db.read() as conn:
            held = await chain_state.leader(conn, "devnet")
        return held is not None and held[1].endswith(f":{worker.pid}")

    async def finish(self, deposits: Deposits) -> None:
        """No more transfers; every one recorded and confirmed; both workers exit cleanly."""
        deposits.stop()
        anvil.mine(self.devnet.url, CONFIRMATIONS)
        await self.until(lambda: self._settled(deposits.sent), "every deposit confirmed")
        for worker in self.workers:
            assert worker.stop() == 0, worker.text()[-3000:]

    async def _settled(self, sent: list[str]) -> bool:
        head = anvil.block_number(self.devnet.url)
        async with self.db.read() as conn:
            cursor = await chain_state.load_cursor(conn, "devnet")
            rows = (await conn.execute(select(deposit.c.tx_hash, deposit.c.status))).all()
        confirmed = {tx for tx, status in rows if status == "confirmed"}
        return cursor is not None and cursor.block_number == head and confirmed >= set(sent)

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()

    def check_one_writer_so_far(self) -> list[Written]:
        """The ranges both workers committed tile the chain from its start: no block twice,
        none skipped, epochs never going down; the cursor never went backwards."""
        written = sorted((w for worker in self.workers for w in worker.written()), key=tiling)
        assert written[0].start == self.chain.start_block
        for before, after in zip(written, written[1:], strict=False):
            assert after.start == before.end + 1, (before, after)
            assert after.epoch >= before.epoch, (before, after)
        assert self.cursors == sorted(self.cursors), "the cursor went backwards"
        return written

    async def check_one_writer_at_a_time(self, sent: list[str]) -> list[Written]:
        """At the end: the whole chain tiled, every transfer recorded and announced once."""
        written = self.check_one_writer_so_far()
        assert written[-1].end == anvil.block_number(self.devnet.url)
        async with self.db.read() as conn:
            recorded = (await conn.execute(select(deposit.c.tx_hash))).scalars().all()
            events = (await conn.execute(select(event.c.type, event.c.data))).all()
        assert sorted(recorded) == sorted(sent)  # none lost, none twice
        announced = Counter(
            (kind, data["depositId"]) for kind, data in events if "depositId" in data
        )
        assert set(announced.values()) == {1}
        assert Counter(kind for kind, _ in announced) == {
            "deposit.pending": len(sent),
            "deposit.confirmed": len(sent),
        }
        return written


def tiling(written: Written) -> tuple[int, int]:
    return written.start, written.epoch


def worker_env(tmp_path: Path, database_url: str, devnet: Devnet, start: int) -> dict[str, str]:
    config = tmp_path / "fencing.toml"
    config.write_text(
        f'database_url = "{database_url}"\nlog_level = "DEBUG"\n'
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\n'
        f"confirmations = {CONFIRMATIONS}\nstart_block = {start}\n"
        "max_block_range = 1\npoll_interval = 0.1\n"
        f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
        'min_amount = "0.01"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return {**env, "ADDRPOOL_CONFIG": str(config)}


async def test_killing_the_leaders_lock_connection_hands_the_chain_over_cleanly(
    db: Database, database_url: str, devnet: Devnet, tmp_path: Path
) -> None:
    scene = Scene(db, database_url, devnet, tmp_path)
    try:
        a, b, deposits = await scene.start()
        await scene.until(lambda: len(a.written()) >= RANGES_PER_STEP, "A to write ranges")
        await terminate_lock_backend(db, "devnet")
        await scene.until(lambda: scene.led_by(b), "B to take over")
        await scene.until(lambda: len(b.written()) >= RANGES_PER_STEP, "B to write ranges")
        scene.check_one_writer_so_far()
        assert a.said(LOST)  # A noticed by itself: its lock is checked every second
        await scene.until(lambda: a.said(STANDBY), "A to stand by again")
        await scene.finish(deposits)
        written = await scene.check_one_writer_at_a_time(deposits.sent)
    finally:
        scene.close()
    [epoch_a] = {w.epoch for w in written if w.worker == "a"}
    [epoch_b] = {w.epoch for w in written if w.worker == "b"}
    assert epoch_b > epoch_a


async def test_a_frozen_leader_writes_nothing_once_thawed(
    db: Database, database_url: str, devnet: Devnet, tmp_path: Path
) -> None:
    """SIGSTOP the leader, kill its lock connection, let the standby take over and advance,
    SIGCONT the old leader: it has not noticed anything yet, and commits nothing."""
    scene = Scene(db, database_url, devnet, tmp_path)
    try:
        a, b, deposits = await scene.start()
        await scene.until(lambda: len(a.written()) >= RANGES_PER_STEP, "A to write ranges")
        committed_by_a = await freeze_outside_a_transaction(scene, a)
        await terminate_lock_backend(db, "devnet")
        await scene.until(lambda: scene.led_by(b), "B to take over")
        await scene.until(lambda: len(b.written()) >= RANGES_PER_STEP, "B to write ranges")
        thawed_at = len(a.text())
        a.signal(signal.SIGCONT)
        progress = len(b.written())
        await scene.until(lambda: len(b.written()) >= progress + RANGES_PER_STEP, "B to go on")
        assert written_after_the_freeze(a, thawed_at, committed_by_a) == []
        scene.check_one_writer_so_far()
        await scene.until(lambda: a.said(LOST, after=thawed_at), "A to find it lost")
        await scene.until(lambda: a.said(STANDBY, after=thawed_at), "A to stand by again")
        await scene.finish(deposits)
        await scene.check_one_writer_at_a_time(deposits.sent)
    finally:
        scene.close()
    assert written_after_the_freeze(a, thawed_at, committed_by_a) == []


def written_after_the_freeze(worker: Worker, thawed_at: int, committed: int) -> list[Written]:
    """Ranges `worker` logged once thawed beyond the cursor it had committed when frozen.

    A range is logged just after its commit: a worker frozen between the two logs, once thawed,
    the range it had committed before the freeze — that one is not a write after it.
    """
    return [w for w in worker.written(after=thawed_at) if w.end > committed]


async def freeze_outside_a_transaction(scene: Scene, worker: Worker) -> int:
    """SIGSTOP `worker` at a moment no session of the database is inside a transaction but
    ours, and return the chain's cursor then: the last block the frozen leader committed.
    (A leader frozen inside a transaction holds its rows, the leadership row included: the next
    leader would wait until PostgreSQL ends that session, see test_leadership.)"""
    busy = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        " AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
    )

    async def frozen_outside_a_transaction() -> bool:
        worker.signal(signal.SIGSTOP)
        os.waitpid(worker.pid, os.WUNTRACED)  # returns once it is stopped
        async with scene.db.read() as conn:
            if not await conn.scalar(busy):
                return True
        worker.signal(signal.SIGCONT)
        return False

    await scene.until(frozen_outside_a_transaction, "a moment outside any transaction")
    async with scene.db.read() as conn:
        cursor = await chain_state.load_cursor(conn, "devnet")
    assert cursor is not None
    return cursor.block_number
