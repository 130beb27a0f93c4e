"""`tracer = "auto"`: each endpoint is asked once which trace API it has (a probe traces the
head block: never per range), the choice is shown per endpoint in `/health` and `addrpool
chains`, and an endpoint without one is not read once another endpoint has one."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chains.endpoints import EndpointPool
from chains.rpc import RpcClient
from chains.watch.runner import note_endpoints, poll_with_failover
from chains.watch.watcher import ChainWatcher
from pool.kit.config import Settings
from pool.kit.db import Database
from scripts.devnet import anvil
from tests.chains.harness import Harness, chain_config
from tests.chains.rpc_proxy import RpcProxy
from tests.fixtures.cli import run_cli
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool

ETH = 10**18
TRACE_METHODS = {"debug_traceBlockByNumber", "trace_block"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Endpoints:
    """Two proxies in front of the devnet, each its own endpoint, and a watcher of the coin
    polled the way `addrpool worker` polls it (in `max_block_range` of 2: many ranges)."""

    def __init__(self, db: Database, devnet: Devnet, pool: list[str]) -> None:
        self.proxies = [RpcProxy(devnet.url), RpcProxy(devnet.url)]
        urls = [p.url for p in self.proxies]
        chain = chain_config(
            devnet, rpc_urls=urls, native=True, native_symbol="ETH", max_block_range=2
        )
        self.clock = Clock()
        clients = [RpcClient(u, attempts=1, timeout=5) for u in urls]
        self.pool = EndpointPool(clients, max_lag=5, clock=self.clock, chain_id="devnet")
        self.harness = Harness(db, devnet, pool, chain, clients[0])

    async def poll(self) -> bool:
        watcher: ChainWatcher = await self.harness.lead()
        served = await poll_with_failover(watcher, self.pool, None)
        if served:  # as chains.watch.runner does after a served poll
            self.pool.note(watcher.client, watcher.internal_transfers_note, tracer=watcher.tracer)
        await note_endpoints(watcher, self.pool, all_down=not served)
        return served

    def probes(self, index: int) -> list[str]:
        return [m for m in self.proxies[index].single if m in TRACE_METHODS]

    async def close(self) -> None:
        await self.pool.close()
        for proxy in self.proxies:
            proxy.close()


@pytest.fixture
async def two(db: Database, devnet: Devnet) -> AsyncIterator[Endpoints]:
    running = Endpoints(db, devnet, await load_pool(db, "evm", 10))
    yield running
    await running.close()


async def test_each_endpoint_is_asked_once_and_its_choice_shown(
    two: Endpoints, devnet: Devnet, client: Any, settings: Settings
) -> None:
    url, pool = devnet.url, two.harness.pool
    first, second = two.proxies
    first.refused_methods = {"debug_traceBlockByNumber"}  # a node with trace_block only
    payer = anvil.deploy_payer(url)
    for n in range(3):
        anvil.pay(url, payer, [pool[n]], [ETH])
        anvil.mine(url, 3)
        assert await two.poll()
    # Many ranges, one question: the call tracer refused, trace_block answered.
    assert two.probes(0) == ["debug_traceBlockByNumber", "trace_block"]
    assert first.methods.count("trace_block") >= 10
    assert two.harness.watcher.tracer == "trace"
    first.status = 503  # the first endpoint fails: the second serves, and is asked once
    for n in range(3, 5):
        anvil.pay(url, payer, [pool[n]], [ETH])
        assert await two.poll()
    assert two.probes(1) == ["debug_traceBlockByNumber"]
    assert two.harness.watcher.tracer == "debug"
    first.status = None
    two.clock.now += 60  # the first is due again: it is not asked again
    anvil.pay(url, payer, [pool[5]], [ETH])
    assert await two.poll()
    assert two.harness.watcher.client.endpoint == first.url
    assert two.probes(0) == ["debug_traceBlockByNumber", "trace_block"]
    assert two.probes(1) == ["debug_traceBlockByNumber"]
    assert sorted(r["trace_position"] for r in await two.harness.deposits()) == ["tx.0"] * 6
    # What each endpoint is read with: in /health and in `addrpool chains`.
    health = (await client.get("/health")).json()
    shown = health["checks"]["chains"]["devnet"]["endpoints"]
    assert [(e["endpoint"], e.get("tracer")) for e in shown] == [
        (first.url, "trace"),
        (second.url, "debug"),
    ]
    assert health["problems"] == []
    devnet_chain = {"protocol": "evm", "rpc_urls": [first.url], "native": True}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")},
        "ADDRPOOL_DATABASE_URL": settings.database_url,
        "ADDRPOOL_NETWORK": "testnet",
        "ADDRPOOL_CHAINS": json.dumps({"devnet": {**devnet_chain, "native_symbol": "ETH"}}),
    }
    text = run_cli(["chains"], env=env, check=True).stdout
    assert f"devnet: internal transfers read with trace_block at {first.url}" in text
    assert (
        f"devnet: internal transfers read with debug_traceBlockByNumber (call tracer) at "
        f"{second.url}" in text
    )


async def test_an_endpoint_without_a_trace_api_is_not_read_once_another_has_one(
    two: Endpoints, devnet: Devnet
) -> None:
    url, pool = devnet.url, two.harness.pool
    first, second = two.proxies
    second.refused_methods = set(TRACE_METHODS)
    payer = anvil.deploy_payer(url)
    assert await two.poll()  # the first reads with the call tracer
    first.status = 503
    paid = anvil.pay(url, payer, [pool[0]], [ETH])
    # The second has no trace API: reading it would lose the internal transfer for good.
    assert not await two.poll()
    (_, down), (_, without) = [(v["state"], v["reason"] or "") for v in two.pool.view()]
    assert without.endswith(
        "no trace API, where another endpoint of the chain reads internal transfers with "
        "debug_traceBlockByNumber (call tracer)"
    )
    assert await two.harness.deposits() == []
    first.status = None
    two.clock.now += 60
    assert await two.poll()
    assert [(r["tx_hash"], r["trace_position"]) for r in await two.harness.deposits()] == [
        (paid, "tx.0")
    ]
    assert two.probes(1) == ["debug_traceBlockByNumber", "trace_block"]
