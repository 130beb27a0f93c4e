"""Where one reconciliation run's wall time goes: its steps wrapped with timers while measured.

The wrappers replace module attributes for the duration of a `with phase_timers()` block only
(the product code is not changed); each adds one `perf_counter` pair per call, nothing a run
of seconds can notice. Phases nest: `audit_chain` holds `block hashes`, `receipts`, `coverage`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from chains import audit, reconciler
from chains.reader import ChainReader
from pool import reconciliation as core
from pool.repository import reconciliation as repo

# (owner, attribute, label); each owner is looked up by module attribute at call time.
PHASES: tuple[tuple[Any, str, str], ...] = (
    (repo, "deposits_since", "SQL: deposits since (+ rows to objects)"),
    (repo, "announcements_since", "SQL: deposit events + deliveries"),
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
            is_async = _is_coroutine_function(original)
            wrap = _timed_async if is_async else _timed_sync
            setattr(owner, name, wrap(original, label, spent))
        yield spent
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _is_coroutine_function(function: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(function)
