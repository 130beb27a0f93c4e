"""What the console's overview costs on a big pool with a long webhook history.

    .venv/bin/python -m scripts.bench.console_overview [--size 1000000] [--deliveries 2000000]

PostgreSQL: a fresh database `addrpool_bench_overview_*`, migrated; `size` addresses seeded as
scripts/bench/pool_counts.py does (30% bound over 30 days, 1% archived, 20,000 cooling); two
webhook endpoints and `deliveries` deliveries between them over 30 days (0.1% failed, 200
pending, the rest succeeded); VACUUM ANALYZE. Then, on one connection: the overview
(`pool.console.overview.overview`) the first time a process shows it and afterwards (median of
20), and its parts: the webhook health, the pool summary, the binds chart once its ended days
are remembered; and the /metrics snapshot (`read_snapshot`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from pool.addresses.stats import summarize
from pool.console.overview import BindDays, overview
from pool.console.overview_repository import endpoint_health
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.monitoring.gauges import read_snapshot
from scripts.bench.bind import psql
from scripts.bench.pool_counts import median_ms, seed
from scripts.bench.report import finish


def seed_deliveries(database: str, count: int) -> None:
    half = count // 2
    psql(
        database,
        "INSERT INTO webhook_endpoint (id, url, signature_scheme, secret_encrypted, enabled, "
        "created_at, updated_at) VALUES "
        "('we_a', 'https://a.example/hook', 'body', 'x', true, now(), now()), "
        "('we_b', 'https://b.example/hook', 'body', 'x', true, now(), now())",
    )
    psql(
        database,
        "INSERT INTO event (id, type, data, created_at) "  # noqa: S608 - numbers only
        "SELECT 'evt_' || i, 'deposit.confirmed', '{}'::json, "
        "now() - (i % 43200) * interval '1 minute' "
        f"FROM generate_series(1, {int(half)}) i",
    )
    psql(
        database,
        f"""
INSERT INTO delivery (id, event_seq, endpoint_id, status, attempts, last_attempt_at,
                      last_status_code, created_at, retry_from, completed_at)
SELECT 'dlv_' || e.seq || w.id, e.seq, w.id,
       CASE WHEN e.seq % 1000 = 0 THEN 'failed'
            WHEN e.seq > {int(half) - 100} THEN 'pending' ELSE 'succeeded' END,
       1, e.created_at, CASE WHEN e.seq % 1000 = 0 THEN 500 ELSE 200 END,
       e.created_at, e.created_at,
       CASE WHEN e.seq > {int(half) - 100} THEN NULL ELSE e.created_at END
  FROM event e CROSS JOIN webhook_endpoint w
""",  # noqa: S608 - numbers only
    )
    for table in ("event", "delivery", "webhook_endpoint"):
        psql(database, f"VACUUM ANALYZE {table}")


async def measure(db: Database) -> dict[str, Any]:
    alerts = AlertSettings()
    async with db.read() as conn:
        now = utc_now()
        began = time.perf_counter()
        await overview(conn, now=now, alerts=alerts, bind_days=BindDays())
        first = round((time.perf_counter() - began) * 1000, 2)
        shared = BindDays()
        return {
            "overview_first_view_ms": first,
            "overview": await median_ms(
                lambda: overview(conn, now=now, alerts=alerts, bind_days=shared), 20
            ),
            "webhook_health": await median_ms(
                lambda: endpoint_health(conn, since=now.replace(hour=0)), 20
            ),
            "summary": await median_ms(lambda: summarize(conn, now=now, alerts=alerts), 20),
            "metrics_snapshot": await median_ms(lambda: read_snapshot(conn, now=now), 20),
            "binds_chart": await median_ms(lambda: shared.chart(conn, protocol="evm", now=now), 20),
        }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    database = f"addrpool_bench_overview_{int(time.time())}"
    psql("postgres", f"CREATE DATABASE {database}")
    db = Database(f"postgresql://postgres@127.0.0.1:5432/{database}", pool_size=2)
    try:
        await upgrade(db)
        began = time.monotonic()
        seed(database, args.size)
        seed_deliveries(database, args.deliveries)
        result: dict[str, Any] = {
            "size": args.size,
            "deliveries": args.deliveries,
            "seed_s": round(time.monotonic() - began, 1),
        }
        result.update(await measure(db))
        print(result, flush=True)
        return result
    finally:
        await db.dispose()
        psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=2_000_000)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    return finish(asyncio.run(main_async(args)), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
