"""What keeping deposits', deliveries' and orders' counts by status costs a write (PostgreSQL).

    .venv/bin/python -m scripts.bench.status_counts [--seconds 8] [--repeat 3] [--json F]

A fresh database `addrpool_bench_status_*`, migrated, two webhook endpoints. 32 tasks in this
process over 8 connections each repeat the webhook path's writes: one transaction records an
event and its two deliveries (as the ledger fans an event out), then one transaction per
delivery marks it succeeded (as a delivery worker does). Runs alternate between the triggers of
`delivery` enabled (with the worker's compaction every 5 s beside them, as in production) and
disabled; then a recount, and the kept counts must equal a full count. The figure is the ratio
of write cycles per second, on ÷ off, pair by pair.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from sqlalchemy import insert, text, update

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.kit.tables import delivery, event
from pool.monitoring.status_counts import (
    COMPACT_EVERY,
    compact,
    full_count_mismatches,
    recount,
)
from scripts.bench.bind import psql
from scripts.bench.console_overview import seed_endpoints
from scripts.bench.pool_counts import per_second
from scripts.bench.report import finish

TASKS, CONNECTIONS = 32, 8
ENDPOINTS = ("we_a", "we_b")


async def cycle(db: Database, name: str) -> None:
    """An event, its two deliveries, each delivered: three transactions."""
    now = utc_now()
    async with db.write() as conn:
        seq = (
            await conn.execute(
                insert(event)
                .values(id=f"evt_{name}", type="deposit.confirmed", data={}, created_at=now)
                .returning(event.c.seq)
            )
        ).scalar_one()
        rows = [
            {
                "id": f"dlv_{name}_{endpoint}",
                "event_seq": seq,
                "endpoint_id": endpoint,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "retry_from": now,
            }
            for endpoint in ENDPOINTS
        ]
        await conn.execute(insert(delivery), rows)
    for endpoint in ENDPOINTS:
        async with db.write() as conn:
            await conn.execute(
                update(delivery)
                .where(delivery.c.id == f"dlv_{name}_{endpoint}")
                .values(status="succeeded", attempts=1, last_attempt_at=now, completed_at=now)
            )


async def cycles_per_second(db: Database, seconds: float, run: int, *, folding: bool) -> float:
    """Cycles per second; with `folding`, the worker's compaction every COMPACT_EVERY beside."""
    deadline = time.monotonic() + seconds

    async def compactor() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(COMPACT_EVERY.total_seconds())
            async with db.write() as conn:
                await compact(conn)

    folder = asyncio.create_task(compactor()) if folding else None
    rate = await per_second(lambda name: cycle(db, f"{run}_{name}"), seconds, tasks=TASKS)
    if folder is not None:
        await folder
    return rate


async def set_triggers(db: Database, enabled: bool) -> None:
    async with db.write() as conn:
        await conn.execute(
            text(f"ALTER TABLE delivery {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")
        )


async def measure(db: Database, seconds: float, repeat: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"triggers": [], "no_triggers": []}
    for run in range(repeat * 2):
        enabled = run % 2 == 0
        await set_triggers(db, enabled)
        rate = await cycles_per_second(db, seconds, run, folding=enabled)
        runs["triggers" if enabled else "no_triggers"].append(rate)
        print(f"  cycles/s, triggers {'on' if enabled else 'off'}: {rate}", flush=True)
    await set_triggers(db, True)
    async with db.write() as conn:
        await recount(conn)
    async with db.read() as conn:
        if await full_count_mismatches(conn):
            raise RuntimeError("the counts differ from a full count after the runs")
    pairs = [
        round(on / off, 3) for on, off in zip(runs["triggers"], runs["no_triggers"], strict=True)
    ]
    return {**runs, "on_vs_off_pairs": pairs, "on_vs_off_median": statistics.median(pairs)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    database = f"addrpool_bench_status_{int(time.time())}"
    psql("postgres", f"CREATE DATABASE {database}")
    db = Database(f"postgresql://postgres@127.0.0.1:5432/{database}", pool_size=CONNECTIONS)
    try:
        await upgrade(db)
        seed_endpoints(database)
        result = {"tasks": TASKS, "connections": CONNECTIONS, "seconds": args.seconds}
        result.update(await measure(db, args.seconds, args.repeat))
        return result
    finally:
        await db.dispose()
        psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    return finish(asyncio.run(main_async(args)), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
