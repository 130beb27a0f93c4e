"""The watcher benchmark's measurements that run in a process of their own.

`scripts/bench/watcher.py --child MODE SPEC.json` runs one of them and writes its result as
JSON to the path the spec names:
- `catchup`: the address book loaded once, then, per block range and repetition, a fresh
  cursor caught up with `ChainWatcher.poll()` and, beside it, the bare scan (raw
  `eth_getLogs` + `transfers_to` against the same in-memory set), in alternating order;
- `worker`: what a worker does on start, and no more: load the book, catch up once; its
  VmHWM, read last, is the worker's peak RSS.
Each watcher run gets a chain id of its own, so its cursor is fresh and its deposits are new.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from chains.evm.erc20 import TRANSFER_TOPIC, recipients_of, transfers_to
from chains.presets import ChainConfig, resolve_chain
from chains.rpc import RpcClient
from chains.watch.address_book import AddressBook
from chains.watch.leadership import take_leadership
from chains.watch.runner import settle_heap
from chains.watch.watcher import ChainWatcher
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import deposit
from scripts.bench.watcher_chain import block_ranges


@dataclass(frozen=True, slots=True)
class ChildSpec:
    database_url: str
    rpc_url: str
    token: str
    start_block: int
    head: int
    logs: int
    pool_logs: int
    ranges: list[int]  # the first is the headline, run `repeat` times; the others `tune_repeat`
    repeat: int
    tune_repeat: int
    confirmations: int
    label: str
    result_path: str

    @classmethod
    def load(cls, path: Path) -> ChildSpec:
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


@dataclass(slots=True)
class Run:
    kind: str  # watcher | bare
    block_range: int
    repetition: int
    seconds: float
    logs: int
    matched: int
    deposits: int = 0
    confirmed: int = 0
    attributed: int = 0
    polls: int = 0
    error: str = ""  # a run that failed: what it raised
    peak_rss_mb: float = 0.0  # this run's own peak: VmHWM reset before it


@dataclass(slots=True)
class ChildResult:
    book_addresses: int = 0
    book_load_seconds: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)


def reset_peak() -> None:
    """Start VmHWM afresh (Linux: 5 in clear_refs), so that each run has its own peak."""
    Path("/proc/self/clear_refs").write_text("5")


def memory_mb(key: str) -> float:
    """VmRSS / VmHWM of this process, from /proc (kB there)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {key} in /proc/self/status")


def chain_config(spec: ChildSpec, chain_id: str, block_range: int) -> ChainConfig:
    chain = {
        "protocol": "evm",
        "rpc_urls": [spec.rpc_url],
        "confirmations": spec.confirmations,
        "block_time": 2.0,
        "start_block": spec.start_block,
        "max_block_range": block_range,
        "tokens": {"USDT": {"contract": spec.token, "decimals": 6}},
    }
    settings = Settings(database_url=spec.database_url, network="testnet", chains={chain_id: chain})
    return resolve_chain(chain_id, settings)


async def watcher_run(
    spec: ChildSpec,
    db: Database,
    book: AddressBook,
    block_range: int,
    repetition: int,
    *,
    own_peak: bool = True,
) -> Run:
    chain_id = f"{spec.label}-r{block_range}-{repetition}"
    chain = chain_config(spec, chain_id, block_range)
    client = RpcClient(spec.rpc_url, timeout=60.0)
    watcher = ChainWatcher(chain, db, book, client, await take_leadership(db, chain_id))
    run = Run("watcher", block_range, repetition, 0.0, spec.logs, 0)
    if own_peak:
        reset_peak()
    started = time.perf_counter()
    cursor = spec.start_block - 1
    try:
        while cursor < spec.head:
            # An error propagates: the runner would retry the same range forever, we report it.
            report = await watcher.poll()
            cursor = report.cursor
            run.deposits += report.deposits
            run.confirmed += report.confirmed
            run.polls += 1
    finally:
        await client.close()
    run.seconds = time.perf_counter() - started
    run.peak_rss_mb = memory_mb("VmHWM")
    run.matched = run.deposits
    run.attributed = await attributed(db, chain_id)
    if run.deposits != spec.pool_logs:
        raise RuntimeError(f"{chain_id}: {run.deposits} deposits, expected {spec.pool_logs}")
    return run


async def attributed(db: Database, chain_id: str) -> int:
    statement = select(func.count()).where(
        deposit.c.chain_id == chain_id, deposit.c.binding_id.is_not(None)
    )
    async with db.read() as conn:
        return int(await conn.scalar(statement) or 0)


async def bare_run(
    spec: ChildSpec, client: RpcClient, book: AddressBook, block_range: int, repetition: int
) -> Run:
    """What the watcher cannot do without: fetch the same ranges raw, match the same set."""
    run = Run("bare", block_range, repetition, 0.0, 0, 0)
    reset_peak()
    started = time.perf_counter()
    for start, end in block_ranges(spec.start_block, spec.head, block_range):
        query = {
            "fromBlock": hex(start),
            "toBlock": hex(end),
            "address": [spec.token.lower()],
            "topics": [TRANSFER_TOPIC],
        }
        logs: list[dict[str, Any]] = await client.call("eth_getLogs", [query])
        run.logs += len(logs)
        run.matched += len(transfers_to(logs, book.matching(recipients_of(logs))))
    run.seconds = time.perf_counter() - started
    run.peak_rss_mb = memory_mb("VmHWM")
    if run.logs != spec.logs or run.matched != spec.pool_logs:
        raise RuntimeError(f"bare scan saw {run.logs}/{run.matched} logs, expected {spec.logs}")
    return run


async def load_book(db: Database, result: ChildResult) -> AddressBook:
    result.rss_mb["before_book"] = memory_mb("VmRSS")
    book = AddressBook("evm")
    started = time.perf_counter()
    await book.refresh(db)
    result.book_load_seconds = time.perf_counter() - started
    result.book_addresses = len(book)
    result.rss_mb["after_book"] = memory_mb("VmRSS")
    settle_heap()  # as `addrpool worker` does when it starts watching (chains.watch.runner)
    return book


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    work: Coroutine[Any, Any, Run]

    async def run(self, block_range: int, repetition: int) -> Run:
        """The run, or what it raised: one failing range must not hide the other figures."""
        try:
            return await self.work
        except Exception as exc:  # reported, with its type, in the table
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            return Run(self.kind, block_range, repetition, 0.0, 0, 0, error=error)


async def catchup(spec: ChildSpec) -> ChildResult:
    result = ChildResult()
    db = Database(spec.database_url)
    book = await load_book(db, result)
    client = RpcClient(spec.rpc_url, timeout=60.0)
    for repetition in range(max(spec.repeat, spec.tune_repeat)):
        for block_range in spec.ranges:
            if repetition >= (spec.repeat if block_range == spec.ranges[0] else spec.tune_repeat):
                continue
            watch = Step("watcher", watcher_run(spec, db, book, block_range, repetition))
            bare = Step("bare", bare_run(spec, client, book, block_range, repetition))
            # Alternate which goes first, so drift and a warm node favour neither.
            for step in (watch, bare) if repetition % 2 == 0 else (bare, watch):
                result.runs.append(await step.run(block_range, repetition))
    await client.close()
    await db.dispose()
    return result


async def worker(spec: ChildSpec) -> ChildResult:
    result = ChildResult()
    db = Database(spec.database_url)
    book = await load_book(db, result)
    result.rss_mb["peak_after_book"] = memory_mb("VmHWM")
    # The process's peak is kept whole here (no reset): its VmHWM is the figure.
    catch_up = watcher_run(spec, db, book, spec.ranges[0], 0, own_peak=False)
    result.runs.append(await Step("watcher", catch_up).run(spec.ranges[0], 0))
    result.rss_mb["after_catchup"] = memory_mb("VmRSS")
    result.rss_mb["peak"] = memory_mb("VmHWM")
    await db.dispose()
    return result


def child_main(mode: str, spec_path: Path) -> int:
    spec = ChildSpec.load(spec_path)
    work = catchup if mode == "catchup" else worker
    result = asyncio.run(work(spec))
    Path(spec.result_path).write_text(json.dumps(asdict(result)))
    return 0
