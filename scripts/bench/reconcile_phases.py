"""Where one reconciliation run's wall time goes: its steps wrapped with timers while measured.

The wrappers replace module attributes for the duration of a `with phase_timers()` block only
(the product code is not changed); each adds one `perf_counter` pair per call, nothing a run
of seconds can notice. Phases nest: `audit_chain` holds `block hashes`, `receipts`, `coverage`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql

from chains.checks import audit, reconciler
from chains.reader import ChainReader
from pool.reconciliation import repository as repo
from pool.reconciliation import service as core

# (owner, attribute, label); each owner is looked up by module attribute at call time.
PHASES: tuple[tuple[Any, str, str], ...] = (
    (repo, "deposits_to_check", "SQL: open deposits of the window (+ rows to objects)"),
    (repo, "count_since", "SQL: deposits in the window (count)"),
    (repo, "confirmed_announcements", "SQL: deposit.confirmed events + deliveries"),
    (repo, "most_recent", "SQL: the most recent deposits to re-read"),
    (core, "check_ledger", "ledger check (Python)"),
    (reconciler, "audit_chain", "chain audit (total)"),
    (ChainReader, "canonical_hashes", "  RPC: block hashes"),
    (audit, "_receipts", "  RPC: receipts"),
    (audit, "_check_coverage", "  coverage check"),
    (reconciler, "_repair_and_store", "repairs + alerts + report stored"),
)


def _timed_async(
    function: Callable[..., Awaitable[Any]], label: str, spent: dict[str, float]
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - began

    return wrapper


def _timed_sync(function: Callable[..., Any], label: str, spent: dict[str, float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - began

    return wrapper


@contextlib.contextmanager
def phase_timers() -> Iterator[dict[str, float]]:
    """Seconds per phase, summed over every run inside the block."""
    spent: dict[str, float] = {}
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in PHASES]
    try:
        for (owner, name, original), (_, _, label) in zip(originals, PHASES, strict=True):
            wrap = _timed_async if inspect.iscoroutinefunction(original) else _timed_sync
            setattr(owner, name, wrap(original, label, spent))
        yield spent
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


# -- the two big reads, as PostgreSQL plans them ----------------------------------------------


class _Capture:
    """Stands in for a connection: keeps the statement a repository function builds."""

    def __init__(self) -> None:
        self.statements: list[Any] = []

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        self.statements.append(statement)
        return _NoRows()


class _NoRows:
    def all(self) -> list[Any]:
        return []


async def reconcile_reads(since: datetime) -> dict[str, str]:
    """The SQL of the window's two reads (PostgreSQL, `since` inlined)."""
    capture = _Capture()
    conn: Any = capture
    await repo.deposits_to_check(conn, since=since, chain_ids=["devnet"])
    await repo.confirmed_announcements(conn, deposit_ids=["dep_example"], since=since)
    dialect = postgresql.dialect()
    compiled = [
        str(s.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        for s in capture.statements
    ]
    return dict(zip(("deposits_to_check", "confirmed_announcements"), compiled, strict=True))


def explain_reads(psql: list[str], database: str, since: datetime) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each read: what the server itself spends on it."""
    plans = {}
    for name, sql in asyncio.run(reconcile_reads(since)).items():
        done = subprocess.run(
            [*psql, "-d", database, "-c", f"EXPLAIN (ANALYZE, BUFFERS) {sql}"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        plans[name] = done.stdout
    return plans


# -- what a run does to the event loop it shares ----------------------------------------------


@contextlib.asynccontextmanager
async def loop_stalls(tick: float = 0.01) -> AsyncIterator[list[float]]:
    """How late a `tick`-second sleep wakes, each time, while the block runs: in `serve` the
    reconciler shares its loop with the API, so a stall is that long a wait for every request."""
    lateness: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            await asyncio.sleep(tick)
            lateness.append(time.perf_counter() - began - tick)

    task = asyncio.create_task(ticker())
    try:
        yield lateness
    finally:
        stop.set()
        await task
