"""Deposit → webhook latency on an anvil devnet, for `scripts/bench/webhooks.py`.

anvil mines a block every `BLOCK_TIME` s; the chain is configured with `block_time = 2` and no
`poll_interval`, so the watcher polls every max(1 s, 2 / 2) = 1 s. `addrpool worker` (watchers
+ delivery worker: `scripts.run.workers.run_workers`) runs as its own process, logging at INFO to a
file as in production. One endpoint, subscribed to `deposit.pending` and `deposit.confirmed`,
points at a recording receiver (another process).

The "mined" moment of block N is when this process first saw the node's head at N or above:
a thread polls `eth_blockNumber` every `HEAD_POLL` s on its own connection, so it trails the
node sealing the block by at most HEAD_POLL plus one loopback round trip (~1 ms); latencies
measured from it are short of the truth by at most that much. (anvil's block timestamp is
whole seconds, so it cannot serve; the receipt appearing is polled too and reported beside.)
The arrival moment is the receiver's `time.time()` once it has read the whole request.

Per sample, at a random phase: a transfer to a freshly bound address, sent without mining
(`eth_sendTransaction`; anvil puts it in its next interval block B). Pending latency: mined(B)
→ `deposit.pending` received. Confirmed latency: mined(B + confirmations − 1), the block at
which `head − B + 1` reaches the requirement → `deposit.confirmed` received. From the database
afterwards, each is split into: the watcher (mined → event written, its `created_at`), the
delivery worker's pick-up (event → first attempt started) and the request itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from chains.presets import resolve_chain
from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.secret_box import secret_box
from pool.kit.tables import delivery, delivery_attempt, event
from pool.vocabulary import DEPOSIT_CONFIRMED, DEPOSIT_PENDING
from pool.webhooks import endpoints as webhooks
from scripts.bench.imports import ADDRPOOL, write_file
from scripts.devnet import anvil

BLOCK_TIME = 2
HEAD_POLL = 0.01
RECEIVER_POLL = 0.05
WEBHOOK_DEADLINE = 30.0
EVENTS = (DEPOSIT_PENDING, DEPOSIT_CONFIRMED)
TOKEN_UNIT = 10**6


@dataclass(frozen=True, slots=True)
class LatencyRun:
    backend: str
    database_url: str
    secret_key: str
    receiver_url: str  # the recording receiver
    stats_url: str
    confirmations: int
    samples: int
    seed: int
    work: Path
    env: dict[str, str]  # the worker's environment, less the settings set here


@dataclass(slots=True)
class Sample:
    tx_hash: str
    block: int
    block_timestamp: int
    sent_at: float
    mined_at: float
    receipt_at: float
    pending_at: float
    confirming_block: int
    confirming_mined_at: float
    confirmed_at: float
    pending_event_at: float = 0.0
    pending_attempt_at: float = 0.0
    confirmed_event_at: float = 0.0
    confirmed_attempt_at: float = 0.0


class HeadWatch(threading.Thread):
    """Notes when each block number is first seen at the node's head."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: dict[int, float] = {}
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        last = -1
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while not self._halt.is_set():
                try:
                    head = int(client.post(self.url, json=body).json()["result"], 16)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    self.error = exc
                    return
                at = time.time()
                for number in range(last + 1 if last >= 0 else head, head + 1):
                    self.seen.setdefault(number, at)
                last = max(last, head)
                self._halt.wait(HEAD_POLL)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def first_seen(self, number: int, deadline: float = WEBHOOK_DEADLINE) -> float:
        give_up = time.monotonic() + deadline
        while number not in self.seen:
            if self.error is not None or time.monotonic() > give_up:
                raise RuntimeError(f"block {number} not seen ({self.error or 'deadline'})")
            time.sleep(HEAD_POLL)
        return self.seen[number]


# -- set-up ------------------------------------------------------------------------------------


def deploy_usdt(url: str) -> tuple[str, str]:
    token = anvil.deploy_token(url, name="Tether USD", symbol="USDT", decimals=6)
    sender = anvil.accounts(url)[0]
    anvil.mint(url, token, sender, 10**9 * TOKEN_UNIT)
    return token, sender


def chain_settings(url: str, token: str, confirmations: int) -> dict[str, Any]:
    """`block_time` 2 and no `poll_interval`: the chain's own default applies (1 s)."""
    return {
        "protocol": "evm",
        "rpc_urls": [url],
        "confirmations": confirmations,
        "block_time": BLOCK_TIME,
        "start_block": anvil.block_number(url) + 1,
        "tokens": {"USDT": {"contract": token, "decimals": 6, "min_amount": "0.01"}},
    }


def poll_interval(chain_id: str, chain: dict[str, Any]) -> float:
    return resolve_chain(chain_id, Settings(chains={chain_id: chain})).poll_interval


async def prepare(run: LatencyRun, references: list[str]) -> list[str]:
    """The endpoint, and one bound address per reference (the pool was imported already)."""
    settings = Settings(database_url=run.database_url, secret_key=run.secret_key)
    db = Database(run.database_url, pool_size=2)
    try:
        async with db.write() as conn:
            await webhooks.create_endpoint(
                conn,
                secret_box(settings),
                url=run.receiver_url,
                events=list(EVENTS),
                scheme="body",
                description="bench latency receiver",
                now=utc_now(),
            )
        addresses: list[str] = []
        for reference in references:
            async with db.write() as conn:
                bound = await allocation.bind(
                    conn,
                    reference=reference,
                    protocol="evm",
                    metadata=None,
                    actor="bench",
                    now=utc_now(),
                )
            addresses.append(bound.binding.address)
        return addresses
    finally:
        await db.dispose()


def import_pool(run: LatencyRun, count: int) -> None:
    pool_file = run.work / f"latency-pool-{run.backend}.txt"
    write_file(pool_file, "evm", count)
    subprocess.run(
        [ADDRPOOL, "import", str(pool_file), "--protocol", "evm", "--json"],
        env={**run.env, "ADDRPOOL_DATABASE_URL": run.database_url},
        cwd=run.work,
        check=True,
        capture_output=True,
    )


# -- samples -----------------------------------------------------------------------------------


def wait_for_webhook(run: LatencyRun, kind: str, tx_hash: str, alive: Callable[[], None]) -> float:
    """The receiver's arrival time of the `kind` event of this transaction."""
    give_up = time.monotonic() + WEBHOOK_DEADLINE
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while time.monotonic() < give_up:
            alive()
            ports = client.get(run.stats_url).json()["ports"]
            for port in ports:
                for record in port["records"]:
                    data = record["body"]["data"]
                    if record["type"] == kind and data["txHash"].lower() == tx_hash.lower():
                        return float(record["at"])
            time.sleep(RECEIVER_POLL)
    raise RuntimeError(f"no {kind} webhook for {tx_hash} within {WEBHOOK_DEADLINE}s")


def one_sample(
    run: LatencyRun,
    node: str,
    token: str,
    sender: str,
    to: str,
    heads: HeadWatch,
    alive: Callable[[], None],
) -> Sample:
    sent_at = time.time()
    tx_hash = anvil.transfer(node, token, to, 5 * TOKEN_UNIT, sender, wait=False)
    mined = anvil.receipt(node, tx_hash)
    receipt_at = time.time()
    block = anvil.rpc(node, "eth_getBlockByNumber", [hex(mined.block_number), False])
    pending_at = wait_for_webhook(run, DEPOSIT_PENDING, tx_hash, alive)
    confirming = mined.block_number + run.confirmations - 1
    confirmed_at = wait_for_webhook(run, DEPOSIT_CONFIRMED, tx_hash, alive)
    return Sample(
        tx_hash=tx_hash.lower(),
        block=mined.block_number,
        block_timestamp=int(block["timestamp"], 16),
        sent_at=sent_at,
        mined_at=heads.first_seen(mined.block_number),
        receipt_at=receipt_at,
        pending_at=pending_at,
        confirming_block=confirming,
        confirming_mined_at=heads.first_seen(confirming),
        confirmed_at=confirmed_at,
    )


async def add_breakdown(database_url: str, samples: list[Sample]) -> None:
    """Event written (`created_at`) and first attempt started, from the database."""
    db = Database(database_url, pool_size=2)
    first_attempt = (
        select(delivery.c.event_seq, func.min(delivery_attempt.c.attempted_at))
        .select_from(delivery_attempt.join(delivery))
        .group_by(delivery.c.event_seq)
    )
    events = select(event.c.seq, event.c.type, event.c.data, event.c.created_at).where(
        event.c.type.in_(EVENTS)
    )
    try:
        async with db.read() as conn:
            attempted = dict((await conn.execute(first_attempt)).tuples().all())
            rows = (await conn.execute(events)).all()
    finally:
        await db.dispose()
    by_tx = {s.tx_hash: s for s in samples}
    for seq, kind, data, created_at in rows:
        sample = by_tx.get(str(data.get("txHash", "")).lower())
        if sample is None or seq not in attempted:
            continue
        if kind == DEPOSIT_PENDING:
            sample.pending_event_at = created_at.timestamp()
            sample.pending_attempt_at = attempted[seq].timestamp()
        else:
            sample.confirmed_event_at = created_at.timestamp()
            sample.confirmed_attempt_at = attempted[seq].timestamp()


def measure(run: LatencyRun, node: str, token: str, sender: str) -> dict[str, Any]:
    """Warm-up sample first (discarded), then `run.samples` measured ones."""
    chain_id = f"bench-latency-{run.backend}"
    chain = chain_settings(node, token, run.confirmations)
    interval = poll_interval(chain_id, chain)
    import_pool(run, run.samples + 5)
    references = [f"latency-{run.backend}-{n}" for n in range(run.samples + 1)]
    addresses = asyncio.run(prepare(run, references))
    rng = random.Random(run.seed)  # noqa: S311 - phases, not secrets
    env = {
        **run.env,
        "ADDRPOOL_DATABASE_URL": run.database_url,
        "ADDRPOOL_SECRET_KEY": run.secret_key,
        "ADDRPOOL_WEBHOOK_ALLOW_PRIVATE": "true",
        "ADDRPOOL_LOG_LEVEL": "INFO",
        "ADDRPOOL_CHAINS": json.dumps({chain_id: chain}),
    }
    heads = HeadWatch(node)
    heads.start()
    log_path = run.work / f"latency-worker-{run.backend}.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [ADDRPOOL, "worker"], cwd=run.work, env=env, stdout=log, stderr=log
        )

        def alive() -> None:
            if worker.poll() is not None:
                raise RuntimeError(f"addrpool worker exited; see {log_path}")

        try:
            samples: list[Sample] = []
            for n, to in enumerate(addresses):
                time.sleep(rng.uniform(0.0, BLOCK_TIME))  # a random phase against the polls
                sample = one_sample(run, node, token, sender, to, heads, alive)
                if n:  # the first one warms the worker up
                    samples.append(sample)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
            heads.stop()
    asyncio.run(add_breakdown(run.database_url, samples))
    return {
        "chain": {**chain, "poll_interval": interval},
        "samples": [asdict(s) for s in samples],
    }
