"""The watcher benchmark's head latency: `addrpool worker` on the chain, blocks mined at random.

Time from `anvil_mine` returning to the `pending` deposit row existing, the database polled
every 10 ms. The chain's block time is 2 s, so the worker polls every max(1 s, 2 s / 2) = 1 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from chains.presets import resolve_chain
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import chain_cursor, deposit
from scripts.bench.imports import ADDRPOOL
from scripts.bench.watcher_chain import TOKEN_UNIT, ChainFacts
from scripts.devnet import anvil

BLOCK_TIME = 2.0
POLL_INTERVAL = 1.0
DB_POLL = 0.01
CAUGHT_UP_DEADLINE = 300.0
DEPOSIT_DEADLINE = 15.0


@dataclass(frozen=True, slots=True)
class LatencyPlan:
    name: str  # the backend's, for the chain id and the log file
    database_url: str
    bound: Sequence[str]  # addresses whose deposits are attributed
    confirmations: int
    samples: int
    seed: int


def head_latency(
    plan: LatencyPlan, chain: ChainFacts, env: Mapping[str, str], work: Path
) -> list[float]:
    chain_id = f"bench-head-{plan.name}"
    config = {
        "protocol": "evm",
        "rpc_urls": [chain.url],
        "confirmations": plan.confirmations,
        "block_time": BLOCK_TIME,
        "start_block": anvil.block_number(chain.url) + 1,
        "tokens": {"USDT": {"contract": chain.token, "decimals": 6}},
    }
    poll_interval = resolve_chain(chain_id, Settings(chains={chain_id: config})).poll_interval
    if poll_interval != POLL_INTERVAL:
        raise RuntimeError(f"expected a {POLL_INTERVAL} s poll interval, got {poll_interval}")
    worker_env = {
        **env,
        "ADDRPOOL_DATABASE_URL": plan.database_url,
        "ADDRPOOL_CHAINS": json.dumps({chain_id: config}),
    }
    with (work / f"worker-{plan.name}.log").open("wb") as log:
        worker = subprocess.Popen(
            [ADDRPOOL, "worker"], cwd=work, env=worker_env, stdout=log, stderr=log
        )
        try:
            return asyncio.run(measure_latency(plan, chain, chain_id, worker))
        finally:
            worker.terminate()
            worker.wait(60)


async def measure_latency(
    plan: LatencyPlan, chain: ChainFacts, chain_id: str, worker: subprocess.Popen[bytes]
) -> list[float]:
    db = Database(plan.database_url, pool_size=2)
    rng = random.Random(plan.seed)  # noqa: S311 - delays, not secrets
    try:
        await caught_up(db, chain_id, anvil.block_number(chain.url), worker)
        latencies: list[float] = []
        for n in range(plan.samples):
            # A random phase against the worker's 1 s poll.
            await asyncio.sleep(rng.uniform(0.2, 1.8))
            to = plan.bound[n % len(plan.bound)]
            tx = anvil.transfer(
                chain.url, chain.token, to, 5 * TOKEN_UNIT, chain.sender, wait=False
            )
            anvil.mine(chain.url, 1)
            mined = time.perf_counter()
            await deposit_appears(db, chain_id, tx.lower())
            latencies.append(time.perf_counter() - mined)
        return latencies
    finally:
        await db.dispose()


async def caught_up(
    db: Database, chain_id: str, head: int, worker: subprocess.Popen[bytes]
) -> None:
    statement = select(chain_cursor.c.block_number).where(chain_cursor.c.chain_id == chain_id)
    deadline = time.monotonic() + CAUGHT_UP_DEADLINE
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"addrpool worker exited with {worker.returncode}")
        async with db.read() as conn:
            cursor = await conn.scalar(statement)
        if cursor is not None and cursor >= head:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the worker did not reach block {head} in {CAUGHT_UP_DEADLINE}s")


async def deposit_appears(db: Database, chain_id: str, tx_hash: str) -> None:
    statement = select(deposit.c.status).where(
        deposit.c.chain_id == chain_id, deposit.c.tx_hash == tx_hash
    )
    deadline = time.monotonic() + DEPOSIT_DEADLINE
    while time.monotonic() < deadline:
        async with db.read() as conn:
            status = await conn.scalar(statement)
        if status is not None:
            if status != "pending":
                raise RuntimeError(f"deposit of {tx_hash} is {status}, not pending")
            return
        await asyncio.sleep(DB_POLL)
    raise RuntimeError(f"no deposit for {tx_hash} within {DEPOSIT_DEADLINE}s")
