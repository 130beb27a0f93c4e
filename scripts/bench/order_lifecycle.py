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
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, insert, select, text, update

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
from pool.kit.secret_box import secret_box
from pool.kit.tables import (
    address,
    alert,
    chain_block,
    chain_cursor,
    chain_leader,
    deposit,
    event,
    payment_order,
)
from pool.orders.expiry import expire_due, run_expiry
from pool.vocabulary import ALLOCATED, AVAILABLE, ORDER_COMPLETED, PENDING
from pool.webhooks import endpoints as webhooks
from scripts.bench.children import clean_env
from scripts.bench.imports import ADDRPOOL, fresh_postgres, write_file
from scripts.bench.watcher_chain import build_chain, deploy_usdt, recipients_plan
from scripts.bench.webhooks_latency import HeadWatch
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil

DATABASE = "addrpool_olife_bench"
SECRET = "bench-orders-secret-key"  # noqa: S105 - a loopback receiver's secret
UNIT = 1_000_000
CHUNK = 5_000


def quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


# -- set-up ------------------------------------------------------------------------------------


def import_pool(url: str, count: int, work: Path) -> None:
    pool_file = work / "pool.csv"
    write_file(pool_file, "evm", count)
    env = clean_env(ADDRPOOL_DATABASE_URL=url)
    subprocess.run(
        [ADDRPOOL, "import", str(pool_file), "--protocol", "evm", "--json"],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )


async def seed_orders(
    db: Database,
    *,
    chain_id: str,
    token: str,
    count: int,
    grace_end: datetime,
    amount: int,
    spread: timedelta = timedelta(0),
) -> list[tuple[str, str]]:
    """`count` pending orders on free addresses, the n-th's grace ending at `grace_end` +
    n × `spread`; their (order id, address)."""
    created = utc_now() - timedelta(minutes=1)
    async with db.write() as conn:
        free = (
            await conn.execute(
                select(address.c.id, address.c.address)
                .where(address.c.status == AVAILABLE, address.c.protocol == "evm")
                .order_by(address.c.id)
                .limit(count)
            )
        ).all()
        if len(free) < count:
            raise RuntimeError(f"{count} orders wanted, {len(free)} free addresses")
        made = []
        rows = []
        for n, (address_id, text_) in enumerate(free):
            ends = grace_end + n * spread
            order_id = "ord_" + secrets.token_hex(16)
            made.append((order_id, text_))
            rows.append(
                {
                    "id": order_id,
                    "order_reference": order_id,
                    "protocol": "evm",
                    "chain_id": chain_id,
                    "currency": "USDT",
                    "token_contract": token,
                    "decimals": 6,
                    "amount": amount,
                    "address_id": address_id,
                    "status": PENDING,
                    "required_confirmations": 2,
                    "payment_url": f"https://pay.example.com/pay/order/{order_id}",
                    "created_at": created,
                    "window_ends_at": ends,
                    "grace_ends_at": ends,
                    "created_by": "bench",
                }
            )
        for start in range(0, len(rows), CHUNK):
            await conn.execute(insert(payment_order), rows[start : start + CHUNK])
            ids = [address_id for address_id, _ in free[start : start + CHUNK]]
            await conn.execute(
                update(address).where(address.c.id.in_(ids)).values(status=ALLOCATED)
            )
    await analyze(db)
    return made


async def drop_orders(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(delete(payment_order))
        await conn.execute(
            update(address).where(address.c.status == ALLOCATED).values(status=AVAILABLE)
        )
    await analyze(db)


async def analyze(db: Database) -> None:
    async with db.autocommit() as conn:
        await conn.execute(text("VACUUM ANALYZE"))


async def forget_chain(db: Database, chain_id: str) -> None:
    """The chain's deposits, events, alerts and watcher state, as if never watched."""
    async with db.write() as conn:
        await conn.execute(delete(deposit).where(deposit.c.chain_id == chain_id))
        await conn.execute(text("DELETE FROM delivery"))
        await conn.execute(delete(event))
        await conn.execute(text("DELETE FROM alert_notification"))
        await conn.execute(text("DELETE FROM alert_transition"))
        await conn.execute(delete(alert))
        for table in (chain_cursor, chain_block, chain_leader):
            await conn.execute(delete(table).where(table.c.chain_id == chain_id))


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
                            grace_end=utc_now() + timedelta(hours=1),
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
            grace_end=utc_now() + timedelta(hours=1),
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


# -- 3. completion latency ---------------------------------------------------------------------


@contextmanager
def recording_receiver(work: Path) -> Iterator[int]:
    ready = work / "receiver.json"
    argv = [sys.executable, "-m", "scripts.bench.webhooks_receiver", "--modes", "record"]
    with (work / "receiver.log").open("wb") as log:
        process = subprocess.Popen(
            [*argv, "--ready", str(ready)], cwd=work, env=clean_env(), stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"receiver did not start; see {work / 'receiver.log'}")
                time.sleep(0.05)
            yield int(json.loads(ready.read_text())[0])
        finally:
            process.terminate()
            process.wait(30)


def completed_at(port: int, order_id: str, deadline: float = 30.0) -> float:
    give_up = time.monotonic() + deadline
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while time.monotonic() < give_up:
            for found in client.get(f"http://127.0.0.1:{port}/_stats").json()["ports"]:
                for record in found["records"]:
                    data = record["body"]["data"]
                    if record["type"] == ORDER_COMPLETED and data["orderId"] == order_id:
                        return float(record["at"])
            time.sleep(0.02)
    raise RuntimeError(f"no order.completed for {order_id} within {deadline}s")


async def endpoint(url: str, receiver: str) -> None:
    db = Database(url, pool_size=2)
    settings = Settings(database_url=url, secret_key=SECRET)
    try:
        async with db.write() as conn:
            await webhooks.create_endpoint(
                conn,
                secret_box(settings),
                url=receiver,
                events=[ORDER_COMPLETED],
                scheme="body",
                description="bench orders receiver",
                now=utc_now(),
            )
    finally:
        await db.dispose()


def latency(url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(11)  # noqa: S311 - phases, not secrets
    confirmations = 2
    with Anvil(block_time=1) as node, recording_receiver(work) as port:
        token, sender = deploy_usdt(node.url)
        chain_id = "bench-latency"
        config = {
            "protocol": "evm",
            "rpc_urls": [node.url],
            "confirmations": confirmations,
            "block_time": 1,
            "start_block": anvil.block_number(node.url) + 1,
            "tokens": {"USDT": {"contract": token, "decimals": 6, "min_amount": "0.01"}},
        }
        interval = resolve_chain(chain_id, Settings(chains={chain_id: config})).poll_interval
        asyncio.run(endpoint(url, f"http://127.0.0.1:{port}/webhook"))

        async def seed() -> list[tuple[str, str]]:
            db = Database(url, pool_size=2)
            try:
                await drop_orders(db)
                await seed_orders(
                    db,
                    chain_id=chain_id,
                    token=token,
                    count=args.orders,
                    grace_end=utc_now() + timedelta(hours=1),
                    amount=1000 * UNIT,  # never paid
                )
                return await seed_orders(
                    db,
                    chain_id=chain_id,
                    token=token,
                    count=args.samples + 1,
                    grace_end=utc_now() + timedelta(hours=1),
                    amount=5 * UNIT,
                )
            finally:
                await db.dispose()

        orders = asyncio.run(seed())
        env = clean_env(
            ADDRPOOL_DATABASE_URL=url,
            ADDRPOOL_SECRET_KEY=SECRET,
            ADDRPOOL_WEBHOOK_ALLOW_PRIVATE="true",
            ADDRPOOL_LOG_LEVEL="INFO",
            ADDRPOOL_CHAINS=json.dumps({chain_id: config}),
        )
        heads = HeadWatch(node.url)
        heads.start()
        log_path = work / "latency-worker.log"
        samples = []
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [ADDRPOOL, "worker"], cwd=work, env=env, stdout=log, stderr=log
            )
            try:
                for n, (order_id, to) in enumerate(orders):
                    time.sleep(rng.uniform(0.0, 1.0))
                    tx = anvil.transfer(node.url, token, to, 5 * UNIT, sender, wait=False)
                    mined = anvil.receipt(node.url, tx)
                    completing = mined.block_number + confirmations - 1
                    arrived = completed_at(port, order_id)
                    if worker.poll() is not None:
                        raise RuntimeError(f"addrpool worker exited; see {log_path}")
                    if n:  # the first warms the worker up
                        samples.append(arrived - heads.first_seen(completing))
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(60)
                heads.stop()
        return {
            "poll_interval": interval,
            "confirmations": confirmations,
            "pending_in_table": args.orders,
            "latency_s": quantiles(samples),
            "samples": [round(s, 3) for s in samples],
        }


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
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
