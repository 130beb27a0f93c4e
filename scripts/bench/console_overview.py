"""What the console's overview costs on a big pool with a long webhook history.

    .venv/bin/python -m scripts.bench.console_overview [--size 1000000] [--deliveries 2000000]
        [--deposits N] [--keep | --database NAME]

PostgreSQL: a fresh database `addrpool_bench_overview_*`, migrated; `size` addresses seeded as
scripts/bench/pool_counts.py does (30% bound over 30 days, 1% archived, 20,000 cooling); two
webhook endpoints and `deliveries` deliveries between them over 30 days (0.1% failed, 200
pending, the rest succeeded); `deposits` deposits to the bound addresses (default one per bound
address; 1% pending, 2% confirmed, the rest completed); VACUUM ANALYZE. `--keep` leaves the
database for a later `--database NAME`, which migrates it to the newest schema and measures
without seeding (a ten-million seed takes about twenty minutes). Then, on one connection: the
overview (`pool.console.overview.overview`) the first time a process shows it and afterwards
(median of 20), and its parts: the webhook health, the pool summary, the binds chart once its
ended days are remembered; and the /metrics snapshot (`read_snapshot`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from pool.addresses.stats import summarize
from pool.bindings.bind_hours import BindHours
from pool.console.overview import CHART_DAYS, RECENT, overview
from pool.console.overview_repository import endpoint_health
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.monitoring.gauges import read_snapshot
from scripts.bench.bind import psql
from scripts.bench.pool_counts import median_ms, seed
from scripts.bench.report import finish


def seed_endpoints(database: str) -> None:
    """Two webhook endpoints, `we_a` and `we_b`."""
    psql(
        database,
        "INSERT INTO webhook_endpoint (id, url, signature_scheme, secret_encrypted, enabled, "
        "created_at, updated_at) VALUES "
        "('we_a', 'https://a.example/hook', 'body', 'x', true, now(), now()), "
        "('we_b', 'https://b.example/hook', 'body', 'x', true, now(), now())",
    )


def seed_deliveries(database: str, count: int) -> None:
    half = count // 2
    seed_endpoints(database)
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


def seed_deposits(database: str, count: int) -> None:
    """`count` deposits, one per binding from the first: the history a /metrics scrape gauges."""
    psql(
        database,
        f"""
INSERT INTO deposit (id, chain_id, tx_hash, log_index, block_number, block_hash, from_address,
                     address_id, binding_id, token_contract, currency, amount, decimals, status,
                     detected_at, confirmed_at, completed_at, block_time)
SELECT 'dep_' || b.id, CASE WHEN b.id % 3 = 0 THEN 'bsc' ELSE 'ethereum' END,
       '0x' || md5(b.id::text) || md5((b.id + 1)::text), 0, b.id, '0x' || md5(b.id::text),
       '0x' || substr(md5((b.id + 2)::text), 1, 40), b.address_id, b.id,
       '0xdac17f958d2ee523a2206206994597c13d831ec7', 'USDT', 1000000, 6,
       CASE WHEN b.id % 100 = 0 THEN 'pending' WHEN b.id % 50 = 1 THEN 'confirmed'
            ELSE 'completed' END,
       b.bound_at, b.bound_at, b.bound_at, b.bound_at
  FROM binding b WHERE b.id <= {int(count)}
""",  # noqa: S608 - numbers only
    )
    psql(database, "VACUUM ANALYZE deposit")


async def measure(db: Database) -> dict[str, Any]:
    alerts = AlertSettings()
    async with db.read() as conn:
        now = utc_now()
        began = time.perf_counter()
        await overview(conn, now=now, alerts=alerts, bind_hours=BindHours())
        first = round((time.perf_counter() - began) * 1000, 2)
        shared = BindHours()
        return {
            "overview_first_view_ms": first,
            "overview": await median_ms(
                lambda: overview(conn, now=now, alerts=alerts, bind_hours=shared), 20
            ),
            "webhook_health": await median_ms(
                lambda: endpoint_health(conn, since=now - RECENT), 20
            ),
            "summary": await median_ms(
                lambda: summarize(conn, now=now, alerts=alerts, bind_hours=shared), 20
            ),
            "summary_unremembered": await median_ms(
                lambda: summarize(conn, now=now, alerts=alerts), 20
            ),
            "metrics_snapshot": await median_ms(
                lambda: read_snapshot(conn, now=now, bind_hours=shared), 20
            ),
            "binds_chart": await median_ms(
                lambda: shared.per_day(conn, days=CHART_DAYS, now=now), 20
            ),
        }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    database = args.database or f"addrpool_bench_overview_{int(time.time())}"
    if not args.database:
        psql("postgres", f"CREATE DATABASE {database}")
    db = Database(f"postgresql://postgres@127.0.0.1:5432/{database}", pool_size=2)
    try:
        began = time.monotonic()
        await upgrade(db)
        result: dict[str, Any] = {"database": database, "size": args.size}
        if not args.database:
            seed(database, args.size)
            seed_deliveries(database, args.deliveries)
            deposits = int(args.size * 0.3) if args.deposits is None else args.deposits
            seed_deposits(database, deposits)
        result["prepare_s"] = round(time.monotonic() - began, 1)
        result.update(await measure(db))
        print(result, flush=True)
        return result
    finally:
        await db.dispose()
        if not (args.keep or args.database):
            psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=2_000_000)
    parser.add_argument("--deposits", type=int, help="default: one per bound address")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep", action="store_true", help="leave the seeded database")
    kept.add_argument("--database", help="measure this kept database (migrated, not seeded)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    return finish(asyncio.run(main_async(args)), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
