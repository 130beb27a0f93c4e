"""SQLite's one writer is shared: while binds stream through it, committed together in trips
(pool.kit.group_commit), the watcher still records a deposit and the webhook worker still
delivers it — everything `serve` runs beside the API, in one event loop, as `serve` does."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.secret_box import secret_box
from pool.webhooks import endpoints as webhooks
from scripts.devnet import anvil
from scripts.run.workers import run_workers
from tests.chains.harness import CONFIRMATIONS, USDT, chain_settings
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool
from tests.fixtures.receivers.http import PostReceiver, Reply

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
BINDERS = 32  # the bind benchmark's concurrency
POOL = 50_000
DEADLINE = 60.0


async def test_the_watcher_and_deliveries_keep_going_under_bind_load(
    db: Database, database_url: str, devnet: Devnet
) -> None:
    settings = Settings(
        database_url=database_url,
        network="testnet",
        secret_key="test-secret-key-for-webhook-secrets",
        webhook_allow_private=True,
        chains={"devnet": chain_settings(devnet, poll_interval=0.2)},
    )
    # Enough for binds at full speed until the webhook arrives, however long a loaded machine
    # takes: a dry pool is not the load this test is about (3,000 ran out once binds got faster).
    await load_pool(db, "evm", POOL)
    payer = await allocation.bind_address(
        db, reference="payer", protocol="evm", metadata=None, actor="t"
    )
    received: list[tuple[float, dict]] = []

    def answer(_headers: dict[str, str], body: bytes) -> Reply:
        received.append((time.monotonic(), json.loads(body)))
        return Reply(200)

    receiver = PostReceiver(answer)
    async with db.write() as conn:
        await webhooks.create_endpoint(
            conn,
            secret_box(settings),
            url=f"http://127.0.0.1:{receiver.port}/hook",
            events=["deposit.pending", "deposit.confirmed"],
            scheme="body",
            description=None,
            now=utc_now(),
        )

    stop_workers, stop_binds = asyncio.Event(), asyncio.Event()
    bound: list[float] = []

    async def binder(n: int) -> None:
        while not stop_binds.is_set():
            reference = f"load_{n}_{len(bound)}"
            await allocation.bind_address(
                db, reference=reference, protocol="evm", metadata=None, actor="t"
            )
            bound.append(time.monotonic())

    workers = asyncio.create_task(run_workers(settings, db, stop_workers))
    binders = [asyncio.create_task(binder(n)) for n in range(BINDERS)]
    try:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(
            anvil.transfer, devnet.url, devnet.usdt, payer.binding.address, USDT
        )
        await asyncio.to_thread(anvil.mine, devnet.url, CONFIRMATIONS)
        confirmed = await _webhook(received, "deposit.confirmed")
        binds_by_then = sum(1 for moment in bound if moment <= confirmed)
    finally:
        stop_binds.set()
        await asyncio.gather(*binders)
        stop_workers.set()
        await asyncio.wait_for(workers, DEADLINE)
        receiver.close()
    kinds = [body["type"] for _, body in received]
    assert kinds.count("deposit.pending") == 1 and kinds.count("deposit.confirmed") == 1
    assert received[0][1]["data"]["depositReference"] == "payer"
    # The binds went on the whole time: the webhook came while they were being made.
    assert binds_by_then >= BINDERS
    assert any(moment > confirmed for moment in bound)


async def _webhook(received: list[tuple[float, dict]], kind: str) -> float:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for moment, body in received:
            if body["type"] == kind:
                return moment
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {kind} webhook within {DEADLINE}s: {received}")
