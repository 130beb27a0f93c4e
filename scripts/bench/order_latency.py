"""Part 3 of the orders benchmark (scripts.bench.order_lifecycle): from the block that gives a
payment its confirmations, first seen at the node's head, to `order.completed` at a recording
receiver, with `addrpool worker` as its own process."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from chains.presets import resolve_chain
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.secret_box import secret_box
from pool.vocabulary import ORDER_COMPLETED
from pool.webhooks import endpoints as webhooks
from scripts.bench.children import clean_env
from scripts.bench.imports import ADDRPOOL
from scripts.bench.order_seed import UNIT, drop_orders, seed_orders
from scripts.bench.report import quantiles
from scripts.bench.watcher_chain import deploy_usdt
from scripts.bench.webhooks_latency import HeadWatch
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil

SECRET = "bench-orders-secret-key"  # noqa: S105 - a loopback receiver's secret


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
                    amount=1000 * UNIT,  # never paid
                )
                return await seed_orders(
                    db,
                    chain_id=chain_id,
                    token=token,
                    count=args.samples + 1,
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
