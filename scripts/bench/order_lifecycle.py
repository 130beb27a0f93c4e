"""Orders benchmark: completion latency, expiry lateness, and the watcher's catch-up with
100,000 pending orders in the table (docs/performance.md, Orders).

    .venv/bin/python -m scripts.bench.order_lifecycle [--orders 100000] [--samples 20]
        [--transfers 20000] [--blocks 500] [--repeat 3] [--parts catchup,expiry,latency]
    smoke run: --orders 2000 --samples 3 --transfers 1000 --blocks 50 --repeat 1

PostgreSQL (database `addrpool_olife_bench`, made again each run), anvil on loopback.
- Set-up: `--orders` + 1,000 EVM addresses imported with `addrpool import`; `--orders` pending
  orders written straight into `payment_order` (as the allocation writes them; their addresses
  `allocated`), on the chain being measured, grace ends an hour away.
1. catchup: a chain of `--transfers` Transfer logs over `--blocks` blocks, a tenth of them to
   400 bound pool addresses (attributed deposits, events), the rest to strangers. A fresh cursor
   and one `ChainWatcher.poll()` (ranges of 100 blocks, 3 confirmations: nearly everything born
   confirmed) with no order in the table, then with the pending orders, alternating, `--repeat`
   times each; the chain's deposits, events and cursor are deleted between runs.
2. expiry: with the pending orders in the table, 30 more whose grace ends 5 to 34 s from now,
   one a second, on a chain whose cursor is past them; the expiry worker (`run_expiry`,
   `expire_every` 1 s) in this process; lateness = `expired_at` − grace end. Also the duration of
   one expiry step that finds nothing due (the query with the pending orders in the table).
3. latency: anvil mining a block a second, `addrpool worker` (watcher polling every 1 s, delivery
   worker) as its own process, a recording receiver (scripts/bench/webhooks_receiver.py) as
   another, one endpoint subscribed to `order.completed`; per sample, at a random phase, a
   payment of the whole amount to a pending order's address; from the moment the block that gives
   it its confirmations (2) is first seen at the node's head to `order.completed` received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from chains.presets import resolve_chain
from chains.rpc import RpcClient
from chains.watch.address_book import AddressBook
from chains.watch.leadership import take_leadership
from chains.watch.watcher import ChainWatcher
from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.config_sections import OrderSettings
from pool.kit.db import Database
from pool.kit.tables import chain_cursor, payment_order
from pool.orders.expiry import expire_due, run_expiry
from scripts.bench.imports import fresh_postgres
from scripts.bench.order_latency import latency
from scripts.bench.order_seed import (
    UNIT,
    analyze,
    drop_orders,
    forget_chain,
    import_pool,
    seed_orders,
)
from scripts.bench.report import finish, quantiles
from scripts.bench.watcher_chain import build_chain, deploy_usdt, recipients_plan
from scripts.devnet.anvil import Anvil

DATABASE = "addrpool_olife_bench"


# -- 1. catch-up -------------------------------------------------------------------------------


async def bind_all(db: Database, count: int) -> list[str]:
    bound = []
    for n in range(count):
        async with db.write() as conn:
            result = await allocation.bind(
                conn,
                reference=f"bench-{n}",
                protocol="evm",
                metadata=None,
                actor="b",
                now=utc_now(),
            )
        bound.append(result.binding.address)
    return bound


async def one_catchup(db: Database, chain_config: Any, head: int) -> float:
    await forget_chain(db, chain_config.chain_id)
    leader = await take_leadership(db, chain_config.chain_id)
    book = AddressBook("evm")
    await book.refresh(db)
    client = RpcClient(chain_config.rpc_urls[0])
    try:
        watcher = ChainWatcher(chain_config, db, book, client, leader)
        started = time.perf_counter()
        report = await watcher.poll()
        seconds = time.perf_counter() - started
    finally:
        await client.close()
    if report.cursor != head:
        raise RuntimeError(f"caught up to {report.cursor}, not {head}")
    return seconds


async def catchup(url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(7)  # noqa: S311 - a plan, not a secret
    db = Database(url, pool_size=4)
    try:
        with Anvil(extra_args=["--gas-limit", "1000000000"]) as node:
            token, sender = deploy_usdt(node.url)
            bound = await bind_all(db, 400)
            plan = recipients_plan(
                rng, transfers=args.transfers, pool_share=0.1, pool_recipients=bound, others=2000
            )
            first, head, built = build_chain(
                node.url, token, sender, plan, blocks=args.blocks, per_tx=50, rng=rng
            )
            chain_id = "bench-catchup"
            config = {
                "protocol": "evm",
                "rpc_urls": [node.url],
                "confirmations": 3,
                "start_block": first,
                "max_block_range": 100,
                "tokens": {"USDT": {"contract": token, "decimals": 6, "min_amount": "0.01"}},
            }
            chain = resolve_chain(chain_id, Settings(chains={chain_id: config}))
            runs: dict[str, list[float]] = {"none": [], "orders": []}
            await one_catchup(db, chain, head)  # warm-up: caches, plans
            for _ in range(args.repeat):
                for label in ("none", "orders"):
                    if label == "orders":
                        await seed_orders(
                            db,
                            chain_id=chain_id,
                            token=token,
                            count=args.orders,
                            amount=50 * UNIT,
                        )
                    else:
                        await analyze(db)
                    runs[label].append(await one_catchup(db, chain, head))
                    if label == "orders":
                        await drop_orders(db)
            blocks = head - first + 1
            medians = {k: statistics.median(v) for k, v in runs.items()}
            return {
                "transfers": args.transfers,
                "blocks": blocks,
                "build_seconds": round(built, 1),
                "seconds": {k: [round(s, 3) for s in v] for k, v in runs.items()},
                "logs_per_second": {k: round(args.transfers / m) for k, m in medians.items()},
                "ratio": round(medians["none"] / medians["orders"], 3),
            }
    finally:
        await db.dispose()


# -- 2. expiry ---------------------------------------------------------------------------------


async def expiry(url: str, args: argparse.Namespace) -> dict[str, Any]:
    db = Database(url, pool_size=4)
    settings = OrderSettings(expire_every=1.0)
    chain_id = "bench-expiry"
    try:
        await drop_orders(db)
        await seed_orders(
            db,
            chain_id="bench-idle",
            token="0x" + "11" * 20,
            count=args.orders,
            amount=UNIT,
        )
        now = utc_now()
        async with db.write() as conn:
            await conn.execute(delete(chain_cursor).where(chain_cursor.c.chain_id == chain_id))
            await conn.execute(
                insert(chain_cursor).values(
                    chain_id=chain_id,
                    block_number=1,
                    block_hash="0x" + "00" * 32,
                    confirmations=2,
                    updated_at=now,
                    block_time=now + timedelta(days=1),  # the watcher is past every grace end
                )
            )
        step = []
        for _ in range(20):
            started = time.perf_counter()
            await expire_due(db, settings)
            step.append(time.perf_counter() - started)
        base = utc_now() + timedelta(seconds=5)
        await seed_orders(
            db,
            chain_id=chain_id,
            token="0x" + "11" * 20,
            count=30,
            grace_end=base,
            amount=UNIT,
            spread=timedelta(seconds=1),
        )
        stop = asyncio.Event()
        worker = asyncio.create_task(run_expiry(db, settings, stop))
        await asyncio.sleep((base - utc_now()).total_seconds() + 32)
        stop.set()
        await worker
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(payment_order.c.expired_at, payment_order.c.grace_ends_at).where(
                        payment_order.c.chain_id == chain_id
                    )
                )
            ).all()
        late = [(e - g).total_seconds() for e, g in rows if e is not None]
        if len(late) != len(rows):
            raise RuntimeError(f"{len(rows) - len(late)} of {len(rows)} orders not expired")
        return {
            "pending_in_table": args.orders,
            "step_nothing_due_ms": quantiles([s * 1000 for s in step]),
            "lateness_s": quantiles(late),
        }
    finally:
        await drop_orders(db)
        await db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="pending orders in the table")
    parser.add_argument("--samples", type=int, default=20, help="completion latency samples")
    parser.add_argument("--transfers", type=int, default=20_000, help="logs in the catch-up chain")
    parser.add_argument("--blocks", type=int, default=500, help="blocks of the catch-up chain")
    parser.add_argument("--repeat", type=int, default=3, help="catch-up runs per case")
    parser.add_argument(
        "--parts", default="catchup,expiry,latency", help="which measurements, comma separated"
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    url = fresh_postgres(DATABASE)
    import_pool(url, args.orders + args.samples + 1_000, work)
    results: dict[str, Any] = {"when": utc_now().isoformat(timespec="seconds")}
    if "catchup" in parts:
        results["catchup"] = asyncio.run(catchup(url, args, work))
        print(json.dumps({"catchup": results["catchup"]}), flush=True)
    if "expiry" in parts:
        results["expiry"] = asyncio.run(expiry(url, args))
        print(json.dumps({"expiry": results["expiry"]}), flush=True)
    if "latency" in parts:
        results["latency"] = latency(url, args, work)
        print(json.dumps({"latency": results["latency"]}), flush=True)
    return finish(results)


if __name__ == "__main__":
    raise SystemExit(main())
