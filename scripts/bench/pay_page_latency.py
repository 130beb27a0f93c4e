"""From the block that completes an order to the payer's page saying so, in a real browser
(docs/performance.md, The payer's page).

    .venv/bin/python -m scripts.bench.pay_page_latency [--samples 20]

PostgreSQL (database `addrpool_paypage_bench`, made anew), anvil mining a block a second,
`addrpool serve` (the API, the watcher polling every second, 2 confirmations) as its own
process, and headless Chromium (Debian's, through Selenium: tests/fixtures/browser.py) on each
order's payment page with its script running. Per sample, at a random phase, a payment of the
whole amount to the order's address; the time from the moment the block that gives it its
second confirmation is first seen at the node's head to the moment the page reads "Paid" (the
page polls the status every 3 s, then reloads). Goal: the watcher's poll interval + the page's
poll interval + 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from api.pages import POLL_SECONDS
from chains.presets import resolve_chain
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from scripts.bench.bind import serving
from scripts.bench.children import clean_env
from scripts.bench.imports import ADDRPOOL, fresh_postgres
from scripts.bench.order_seed import UNIT, import_pool, seed_orders
from scripts.bench.report import finish, quantiles
from scripts.bench.watcher_chain import deploy_usdt
from scripts.bench.webhooks_latency import HeadWatch
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil
from tests.fixtures.browser import browser, text

DATABASE = "addrpool_paypage_bench"
PORT = 18885
CONFIRMATIONS = 2
PAID = "Paid. Thank you!"


def chain_config(node_url: str, token: str) -> dict[str, Any]:
    return {
        "protocol": "evm",
        "rpc_urls": [node_url],
        "confirmations": CONFIRMATIONS,
        "block_time": 1,
        "start_block": anvil.block_number(node_url) + 1,
        "tokens": {"USDT": {"contract": token, "decimals": 6, "min_amount": "0.01"}},
    }


def orders_to_pay(url: str, chain_id: str, token: str, count: int) -> list[tuple[str, str]]:
    async def seed() -> list[tuple[str, str]]:
        db = Database(url, pool_size=2)
        try:
            return await seed_orders(db, chain_id=chain_id, token=token, count=count, amount=UNIT)
        finally:
            await db.dispose()

    return asyncio.run(seed())


def shown_paid_at(page: Any, deadline: float = 60.0) -> float:
    """The wall clock (as HeadWatch's) when the page first reads "Paid"."""
    give_up = time.monotonic() + deadline
    while PAID not in text(page):
        if time.monotonic() > give_up:
            raise RuntimeError("the page never said it was paid")
        time.sleep(0.05)
    return time.time()


def measure(url: str, samples: int) -> dict[str, Any]:
    rng = random.Random(13)  # noqa: S311 - phases, not secrets
    chain_id = "bench-page"
    with Anvil(block_time=1) as node:
        token, sender = deploy_usdt(node.url)
        config = chain_config(node.url, token)
        interval = resolve_chain(chain_id, Settings(chains={chain_id: config})).poll_interval
        orders = orders_to_pay(url, chain_id, token, samples + 1)
        env = clean_env(
            ADDRPOOL_DATABASE_URL=url,
            ADDRPOOL_LOG_LEVEL="WARNING",
            ADDRPOOL_CHAINS=json.dumps({chain_id: config}),
        )
        heads = HeadWatch(node.url)
        heads.start()
        measured = []
        try:
            with serving([ADDRPOOL, "serve", "--port", str(PORT)], env, PORT), browser() as page:
                for n, (order_id, to) in enumerate(orders):
                    page.get(f"http://127.0.0.1:{PORT}/pay/order/{order_id}")
                    time.sleep(rng.uniform(0.0, POLL_SECONDS))  # any phase of the page's poll
                    tx = anvil.transfer(node.url, token, to, UNIT, sender, wait=False)
                    completing = anvil.receipt(node.url, tx).block_number + CONFIRMATIONS - 1
                    shown = shown_paid_at(page)
                    if n:  # the first warms everything up
                        measured.append(shown - heads.first_seen(completing))
        finally:
            heads.stop()
    return {
        "watcher_poll_interval_s": interval,
        "page_poll_interval_s": POLL_SECONDS,
        "goal_s": interval + POLL_SECONDS + 1,
        "confirmations": CONFIRMATIONS,
        "latency_s": quantiles(measured),
        "samples": [round(s, 3) for s in measured],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="orders paid and watched")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-paypage-"))
    url = fresh_postgres(DATABASE)
    import_pool(url, args.samples + 10, work)
    results = {"when": utc_now().isoformat(timespec="seconds"), **measure(url, args.samples)}
    return finish(results)


if __name__ == "__main__":
    sys.exit(main())
