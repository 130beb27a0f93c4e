"""The watcher benchmark's pool: its databases, the import files and their timed imports,
the bound addresses and the watched sets (scripts/bench/watcher.py runs the benchmark)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.db import Database
from scripts.bench.children import clean_env
from scripts.bench.imports import ADDRPOOL, fresh_postgres, timed_import, write_file


@dataclass(slots=True)
class Backend:
    name: str
    url: str
    import_: dict[str, Any] = field(default_factory=dict)
    bound: list[str] = field(default_factory=list)
    catchup: dict[str, Any] = field(default_factory=dict)
    worker: dict[str, Any] = field(default_factory=dict)
    latency: list[float] = field(default_factory=list)


def prepare_backend(name: str, work: Path, pg_database: str) -> Backend:
    if name == "postgresql":
        return Backend(name, fresh_postgres(pg_database))
    url = f"sqlite:///{work / 'bench.db'}"
    subprocess.run(
        [ADDRPOOL, "db", "upgrade"], env=clean_env(ADDRPOOL_DATABASE_URL=url), check=True,
        capture_output=True,
    )  # fmt: skip
    return Backend(name, url)


async def bind_first(url: str, count: int) -> list[str]:
    """Bind `count` references; the pool hands out never-used addresses in id order."""
    db = Database(url, pool_size=2)
    bound: list[str] = []
    for n in range(count):

        async def work(conn: Any, reference: str = f"bench-{n}") -> Any:
            return await allocation.bind(
                conn, reference=reference, protocol="evm", metadata=None, actor="bench",
                now=utc_now(),
            )  # fmt: skip

        bound.append((await db.run_write(work)).binding.address)
    await db.dispose()
    return bound


def pool_recipients(
    bound: Sequence[str], pairs: Sequence[tuple[str, str]], *, total: int, bound_count: int
) -> list[str]:
    """The bound addresses, then never-bound ones from the end of the import file."""
    spare = [text for text, _ in pairs[len(pairs) - (total - bound_count) :]]
    return [*bound[:bound_count], *spare]


def watched_sets(
    recipients: Sequence[str], pairs: Sequence[tuple[str, str]], sizes: Sequence[int], skip: int
) -> dict[int, list[str]]:
    """Per size: every pool recipient, then other pool addresses (hex20s)."""
    base = [text[2:].lower() for text in recipients]
    taken = set(base)
    others = (hex20 for _, hex20 in pairs[skip:] if hex20 not in taken)
    sets: dict[int, list[str]] = {}
    for size in sorted(sizes):
        previous = sets[max(sets)] if sets else base
        more = itertools.islice(others, max(0, size - len(previous)))
        sets[size] = [*previous, *more][:size]
    return sets


def setup_pool(
    args: argparse.Namespace, work: Path, pg_database: str
) -> tuple[list[Backend], list[tuple[str, str]]]:
    print(f"generating {args.addresses:,} EVM addresses", flush=True)
    files = import_files(work, args.addresses, args.import_files)
    pairs = [pair for _, file_pairs in files for pair in file_pairs]
    backends: list[Backend] = []
    for name in args.backends:
        backend = prepare_backend(name, work, pg_database)
        print(f"{name}: addrpool import of {args.addresses:,} addresses", flush=True)
        backend.import_ = timed_imports(
            [path for path, _ in files], clean_env(ADDRPOOL_DATABASE_URL=backend.url)
        )
        backend.bound = asyncio.run(bind_first(backend.url, args.bound))
        backends.append(backend)
    first = backends[0].bound
    for backend in backends[1:]:
        if backend.bound != first:
            raise RuntimeError(f"{backend.name} bound other addresses than {backends[0].name}")
    return backends, pairs


def import_files(
    work: Path, addresses: int, count: int
) -> list[tuple[Path, list[tuple[str, str]]]]:
    """The pool as `count` import files of about equal size (one `addrpool import` each)."""
    files = []
    for n in range(count):
        rows = addresses // count + (1 if n < addresses % count else 0)
        path = work / f"pool-{n}.txt"
        files.append((path, write_file(path, "evm", rows)))
    return files


def timed_imports(paths: Sequence[Path], env: dict[str, str]) -> dict[str, Any]:
    """One `addrpool import` after another: their total wall time, each one's, the peak RSS."""
    each = [timed_import(path, "evm", env) for path in paths]
    return {
        "seconds": round(sum(one["seconds"] for one in each), 2),
        "imported": sum(one["imported"] for one in each),
        "peak_rss_mb": max(one["peak_rss_mb"] for one in each),
        "files": len(each),
        "each_seconds": [one["seconds"] for one in each],
    }
