"""What reconciling orders adds to a run: its reads and comparisons over a window of orders.

    .venv/bin/python scripts/bench/reconcile_orders.py [--orders 100000] [--runs 5]
        [--backends postgresql,sqlite]

Setup, per backend (a fresh database: PostgreSQL `addrpool_bench_recon_orders`, or a SQLite
file), written in bulk with SQLAlchemy Core: `--orders` completed orders created over the last
week (the default window), each on its own address with one confirmed `payment` deposit and an
`order.completed` event carrying an order-sized payload with one succeeded delivery; then
ANALYZE. Measured, `--runs` times: the order step of `chains.checks.reconciler` (the reads of
pool/orders/reconcile_repository.py in one read transaction, then the comparisons of
pool/reconciliation/orders.py), wall clock; median and spread. Findings must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from pool.kit.clock import isoformat_z, utc_now
from pool.kit.db import Database
from pool.kit.tables import address, delivery, deposit, event, payment_order
from pool.orders import reconcile_repository as orders_repo
from pool.reconciliation import orders as order_checks
from scripts.bench.reconcile_data import chunked, seed_endpoint, seed_pool
from scripts.bench.watcher_pool import prepare_backend

PG_DATABASE = "addrpool_bench_recon_orders"
WINDOW = timedelta(days=7)
USDT_CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


async def seed(url: str, count: int) -> None:
    db = Database(url, pool_size=2)
    await seed_pool(db, count)
    endpoint_id = await seed_endpoint(db, secrets.token_hex(16))
    now = utc_now()
    async with db.read() as conn:
        addresses = (await conn.execute(select(address.c.id, address.c.address))).all()
    orders, deposits, events, deliveries = [], [], [], []
    for n, (address_id, text) in enumerate(addresses[:count]):
        created = now - WINDOW * 0.95 + (WINDOW * 0.9) * (n / count)
        order_id = f"ord_{n:028x}"
        deposit_id = f"dep_{n:028x}"
        orders.append(
            {
                "id": order_id,
                "order_reference": f"bench-{n}",
                "protocol": "evm",
                "chain_id": "devnet",
                "currency": "USDT",
                "token_contract": USDT_CONTRACT,
                "decimals": 6,
                "amount": 5_000_000,
                "address_id": address_id,
                "status": "completed",
                "required_confirmations": 3,
                "payment_url": f"https://pay.example/pay/order/{order_id}",
                "created_at": created,
                "window_ends_at": created + timedelta(minutes=10),
                "grace_ends_at": created + timedelta(minutes=15),
                "completed_at": created + timedelta(minutes=2),
                "completed_by": deposit_id,
                "cooldown_until": created + timedelta(minutes=32),
                "created_by": "bench",
            }
        )
        deposits.append(
            {
                "id": deposit_id,
                "chain_id": "devnet",
                "tx_hash": "0x" + secrets.token_hex(32),
                "log_index": 0,
                "block_number": n + 1,
                "block_hash": "0x" + secrets.token_hex(32),
                "from_address": text,
                "address_id": address_id,
                "token_contract": USDT_CONTRACT,
                "currency": "USDT",
                "amount": 5_000_000,
                "decimals": 6,
                "status": "confirmed",
                "late": False,
                "detected_at": created + timedelta(minutes=1),
                "confirmed_at": created + timedelta(minutes=2),
                "order_id": order_id,
                "order_role": "payment",
                "block_time": created + timedelta(minutes=1),
            }
        )
        data = {
            "orderId": order_id,
            "orderReference": f"bench-{n}",
            "status": "completed",
            "amount": "5",
            "currency": "USDT",
            "chainId": "devnet",
            "address": text,
            "paymentUrl": f"https://pay.example/pay/order/{order_id}",
            "createdAt": isoformat_z(created),
            "transfers": [{"depositId": deposit_id, "amount": "5", "status": "confirmed"}],
        }
        events.append(
            {
                "id": f"evt_{n:028x}",
                "type": "order.completed",
                "data": data,
                "created_at": created + timedelta(minutes=2),
            }
        )
    async with db.write() as conn:
        for table, rows in ((payment_order, orders), (deposit, deposits), (event, events)):
            for chunk in chunked(rows):
                await conn.execute(insert(table), list(chunk))
        seqs = (await conn.execute(select(event.c.seq, event.c.created_at))).all()
        for seq, at in seqs:
            deliveries.append(
                {
                    "id": f"dlv_{seq:028x}",
                    "event_seq": seq,
                    "endpoint_id": endpoint_id,
                    "status": "succeeded",
                    "attempts": 1,
                    "created_at": at,
                    "retry_from": at,
                    "completed_at": at,
                }
            )
        for chunk in chunked(deliveries):
            await conn.execute(insert(delivery), list(chunk))
    await db.dispose()


def analyse(url: str) -> None:
    if url.startswith("postgresql"):
        psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-d", PG_DATABASE]
        subprocess.run([*psql, "-c", "VACUUM ANALYZE"], check=True)
        return
    import sqlite3

    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    connection.execute("ANALYZE")
    connection.close()


async def one_step(db: Database) -> tuple[float, int, int]:
    """The reconciler's order step (chains/checks/reconciler.py `_order_findings`)."""
    began = time.perf_counter()
    now = utc_now()
    async with db.read() as conn:
        checked = await orders_repo.count_ended(conn, since=now - WINDOW, chain_ids=["devnet"])
        orders = await orders_repo.ended_orders(conn, since=now - WINDOW, chain_ids=["devnet"])
        transfers = await orders_repo.paid_transfers(conn, [o.id for o in orders])
        announcements = await orders_repo.unacknowledged_order_events(
            conn, since=now - WINDOW, created_before=now
        )
    findings = order_checks.check_orders(orders, transfers)
    findings += order_checks.check_order_events(announcements, chain_ids={"devnet"}).findings
    return time.perf_counter() - began, checked, len(findings)


async def measure(url: str, runs: int) -> dict[str, Any]:
    db = Database(url, pool_size=2)
    seconds, checked, found = [], 0, 0
    for _ in range(runs):
        took, checked, found = await one_step(db)
        seconds.append(took)
    await db.dispose()
    return {
        "orders_checked": checked,
        "findings": found,
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="completed orders seeded")
    parser.add_argument("--runs", type=int, default=5, help="timed order steps per backend")
    parser.add_argument("--backends", default="postgresql,sqlite", help="comma list")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_recon_orders_") as folder:
        for name in args.backends.split(","):
            backend = prepare_backend(name, Path(folder), PG_DATABASE)
            began = time.perf_counter()
            asyncio.run(seed(backend.url, args.orders))
            analyse(backend.url)
            result = asyncio.run(measure(backend.url, args.runs))
            result["seed_s"] = round(time.perf_counter() - began, 1)
            results[name] = result
            print(name, json.dumps(result), flush=True)
    failed = any(r["findings"] or r["orders_checked"] != args.orders for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
