"""The pool's counts: what the summary and /metrics cost, counted in full (before) and kept by
triggers (after); and what keeping them costs a bind, triggers on and off in alternating runs.

    .venv/bin/python -m scripts.bench.pool_counts [--sizes 1000000,10000000] [--json F]

1. PostgreSQL: a fresh database `addrpool_bench_counts_*`, migrated; `size` addresses, of which
   30% bound (bindings spread over 30 days, so a day's bind rate is realistic), 1% archived and
   20,000 cooling down; VACUUM ANALYZE.
2. Latency, median of repeated calls on one connection: the full count the summary used to
   run (`full_count_by_state`), the kept counts (`count_by_state`), the whole summary
   (`summarize`, the bind rate included) and the /metrics snapshot (`read_snapshot`).
3. Binds (`--bind-seconds`, 0 skips): `pool.bindings.service.bind_address` from 32 tasks
   in this process over 8 connections, runs alternating between the trigger that counts a
   change of status enabled and disabled (then a recount), on PostgreSQL at the first size;
   on SQLite the same on a file of 200,000 (the trigger dropped and created again).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from pool.addresses.counts import count_by_state, full_count_mismatches, recount
from pool.addresses.repository import full_count_by_state
from pool.addresses.stats import summarize
from pool.bindings.service import bind_address
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.monitoring.gauges import read_snapshot
from scripts.bench.bind import psql, settle
from scripts.bench.report import finish

MIGRATION = importlib.import_module("pool.kit.migrations.versions.0022_address_counts")
TASKS, CONNECTIONS = 32, 8  # the server is shared: a few connections


def seed(database: str, size: int) -> None:
    """`size` addresses: 30% bound over 30 days, 1% archived, 20,000 cooling down."""
    hex40 = "substr(md5(i::text) || md5((i + 7)::text), 1, 40)"
    psql(
        database,
        "INSERT INTO address (protocol, address, hex20, status, created_at) "  # noqa: S608
        "SELECT 'evm', '0x' || h, h, 'available', now() "
        f"FROM (SELECT {hex40} AS h FROM generate_series(1, {int(size)}) i) s "
        # In the unique indexes' order (ids then follow it): in md5 order every row went to a
        # random leaf of both, and ten million took some 25 minutes to seed.
        "ORDER BY h",
    )
    bound = int(size * 0.3)
    psql(
        database,
        f"""
WITH marked AS (
  UPDATE address SET status = 'bound', last_reference = 'bulk_' || id
   WHERE id <= {bound} RETURNING id
)
INSERT INTO binding (deposit_reference, protocol, address_id, bound_at, bound_by)
SELECT 'bulk_' || id, 'evm', id, now() - (id % 43200) * interval '1 minute', 'bench'
  FROM marked
""",  # noqa: S608 - numbers only
    )
    archived = size - size // 100
    psql(database, f"UPDATE address SET status = 'archived' WHERE id > {archived}")  # noqa: S608
    psql(
        database,
        "UPDATE address SET recycled_at = now(), cooldown_until = now() + interval '7 days' "  # noqa: S608
        f"WHERE id > {bound} AND id <= {bound + 20_000}",
    )
    settle(database)


async def median_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, float]:
    await call()  # warm: plans, caches
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


async def latencies(db: Database) -> dict[str, Any]:
    async with db.read() as conn:
        now = utc_now()
        full = await full_count_by_state(conn, now=now)
        kept = await count_by_state(conn, now=now)
        return {
            "kept_equals_full": {k: v for k, v in full.items() if v}
            == {k: v for k, v in kept.items() if v},
            "full_count": await median_ms(lambda: full_count_by_state(conn, now=now), 5),
            "kept_counts": await median_ms(lambda: count_by_state(conn, now=now), 30),
            "summary": await median_ms(lambda: summarize(conn, now=now), 30),
            "metrics_snapshot": await median_ms(lambda: read_snapshot(conn, now=now), 30),
        }


async def per_second(
    work: Callable[[str], Awaitable[Any]], seconds: float, *, tasks: int = TASKS
) -> float:
    """`tasks` tasks calling `work` (with a name of their own each time) for `seconds`: calls
    done per second."""
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(task: int) -> None:
        nonlocal done
        n = 0
        while time.monotonic() < deadline:
            n += 1
            await work(f"{task}_{n}")
            done += 1

    began = time.monotonic()
    await asyncio.gather(*(worker(t) for t in range(tasks)))
    return round(done / (time.monotonic() - began), 1)


async def binds_per_second(db: Database, seconds: float, run: int) -> float:
    async def bind(name: str) -> None:
        reference = f"r{run}_{name}"
        await bind_address(db, reference=reference, protocol="evm", metadata=None, actor="b")

    return await per_second(bind, seconds)


async def set_trigger(db: Database, enabled: bool) -> None:
    async with db.write() as conn:
        if db.is_sqlite:
            await conn.execute(text("DROP TRIGGER IF EXISTS address_count_changed"))
            if enabled:
                await conn.execute(text(MIGRATION._SQLITE_TRIGGERS[2]))
        else:
            state = "ENABLE" if enabled else "DISABLE"
            await conn.execute(text(f"ALTER TABLE address {state} TRIGGER address_count_changed"))


async def bind_ab(db: Database, seconds: float, repeat: int) -> dict[str, Any]:
    """Runs alternating on, off, on, off…; the counts recounted after."""
    runs: dict[str, list[float]] = {"triggers": [], "no_triggers": []}
    for run in range(repeat * 2):
        enabled = run % 2 == 0
        await set_trigger(db, enabled)
        rate = await binds_per_second(db, seconds, run)
        runs["triggers" if enabled else "no_triggers"].append(rate)
        print(f"  binds/s, trigger {'on' if enabled else 'off'}: {rate}", flush=True)
    await set_trigger(db, True)
    async with db.write() as conn:
        await recount(conn)
    async with db.read() as conn:
        if await full_count_mismatches(conn):
            raise RuntimeError("the counts differ from a full count after the bind runs")
    on, off = (statistics.median(runs[k]) for k in ("triggers", "no_triggers"))
    return {**runs, "median_on": on, "median_off": off, "on_vs_off": round(on / off, 3)}


async def postgres(size: int, args: argparse.Namespace, with_binds: bool) -> dict[str, Any]:
    database = f"addrpool_bench_counts_{int(time.time())}"
    psql("postgres", f"CREATE DATABASE {database}")
    db = Database(f"postgresql://postgres@127.0.0.1:5432/{database}", pool_size=CONNECTIONS)
    try:
        await upgrade(db)
        began = time.monotonic()
        seed(database, size)
        result: dict[str, Any] = {"seed_s": round(time.monotonic() - began, 1)}
        result.update(await latencies(db))
        print(f"postgresql {size:,}: {result}", flush=True)
        if with_binds:
            result["binds"] = await bind_ab(db, args.bind_seconds, args.repeat)
        return result
    finally:
        await db.dispose()
        psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


async def sqlite(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        db = Database(f"sqlite:///{Path(directory) / 'bench.db'}")
        try:
            await upgrade(db)
            async with db.write() as conn:
                await conn.execute(
                    text(
                        "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i "
                        "WHERE n < 200000) INSERT INTO address (protocol, address, hex20, "
                        "status, created_at) SELECT 'evm', printf('0x%040x', n), "
                        "printf('%040x', n), 'available', '2026-01-01T00:00:00' FROM i"
                    )
                )
            result: dict[str, Any] = await latencies(db)
            print(f"sqlite 200,000: {result}", flush=True)
            result["binds"] = await bind_ab(db, args.bind_seconds, args.repeat)
            return result
        finally:
            await db.dispose()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"tasks": TASKS, "connections": CONNECTIONS}
    for n, size in enumerate(args.sizes):
        with_binds = n == 0 and args.bind_seconds > 0
        results[f"postgresql_{size}"] = await postgres(size, args, with_binds)
    if args.bind_seconds > 0 and not args.skip_sqlite:
        results["sqlite_200000"] = await sqlite(args)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda v: [int(s) for s in v.split(",")],
        default=[1_000_000],
        help="pool sizes on PostgreSQL, comma-separated",
    )
    parser.add_argument("--bind-seconds", type=float, default=8, help="per bind run; 0 skips")
    parser.add_argument("--repeat", type=int, default=3, help="bind runs per side")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    return finish(asyncio.run(main_async(args)), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
