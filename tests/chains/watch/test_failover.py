"""Endpoints that die, lag, throttle, cap ranges or answer garbage; Tron through the same watcher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import select

from chains.endpoints import EndpointPool, HealthNotes
from chains.rpc import RpcClient, RpcError
from chains.watch.address_book import AddressBook
from chains.watch.leadership import take_leadership
from chains.watch.runner import note_endpoints, poll_with_failover
from chains.watch.watcher import ChainWatcher
from pool.chain_state.repository import load_cursor
from pool.kit.db import Database
from pool.kit.tables import alert
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil
from tests.chains.harness import USDT, Harness, chain_config
from tests.chains.rpc_proxy import RpcProxy
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool
from tests.fixtures.server import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def proxy(devnet: Devnet) -> Iterator[RpcProxy]:
    running = RpcProxy(devnet.url)
    yield running
    running.close()


@pytest.fixture
async def pool(db: Database) -> list[str]:
    return await load_pool(db, "evm", 10)


class Failover:
    """A watcher with an endpoint pool, polled the way `addrpool worker` polls it."""

    def __init__(self, harness: Harness, urls: list[str]) -> None:
        self.harness = harness
        self.clock = Clock()
        self.endpoints = EndpointPool(
            [RpcClient(u, attempts=1, timeout=2) for u in urls], max_lag=5, clock=self.clock
        )
        self.watcher: ChainWatcher | None = None

    async def poll(self) -> bool:
        if self.watcher is None:
            leadership = await take_leadership(self.harness.db, self.harness.chain.chain_id)
            client = self.endpoints.endpoints[0].client
            book = AddressBook("evm")
            self.watcher = ChainWatcher(
                self.harness.chain, self.harness.db, book, client, leadership
            )
        served = await poll_with_failover(self.watcher, self.endpoints, stop=None)
        await note_endpoints(self.watcher, self.endpoints, all_down=not served)
        return served

    def states(self) -> list[tuple[str, str]]:
        return [(v["state"], v["reason"] or "") for v in self.endpoints.view()]


@pytest.fixture
async def failover_factory(db: Database, devnet: Devnet, pool: list[str]) -> AsyncIterator:
    made: list[Failover] = []

    def make(urls: list[str]) -> Failover:
        chain = chain_config(devnet, rpc_urls=urls)
        made.append(Failover(Harness(db, devnet, pool, chain), urls))
        return made[-1]

    yield make
    for failover in made:
        await failover.endpoints.close()
        await failover.harness.client.close()


async def test_a_dead_endpoint_is_set_aside_and_the_live_one_serves(
    failover_factory, devnet: Devnet, client
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    failover = failover_factory([dead, devnet.url])
    address = await failover.harness.bind("u1")
    failover.harness.send(address)
    assert await failover.poll()
    assert [r["amount"] for r in await failover.harness.deposits()] == [USDT]
    (dead_state, reason), (live_state, _) = failover.states()
    assert (dead_state, live_state) == ("set_aside", "ok")
    assert "ClientConnectorError" in reason or "Connect" in reason
    async with failover.harness.db.read() as conn:
        cursor = await load_cursor(conn, "devnet")
    assert cursor is not None and cursor.endpoint == devnet.url
    assert [e["state"] for e in cursor.endpoints or []] == ["set_aside", "ok"]
    health = (await client.get("/health")).json()["checks"]["chains"]["devnet"]
    assert health["endpoint"] == devnet.url
    assert [(e["endpoint"], e["state"]) for e in health["endpoints"]] == [
        (dead, "set_aside"),
        (devnet.url, "ok"),
    ]


async def test_a_lagging_node_is_set_aside(failover_factory, devnet: Devnet) -> None:
    anvil.mine(devnet.url, 10)
    with Anvil() as behind:  # a second chain, held ten blocks and more behind
        failover = failover_factory([behind.url, devnet.url])
        assert await failover.poll()
        assert failover.states()[0][0] == "set_aside"
        assert "lagging" in failover.states()[0][1]
        assert failover.watcher.client.url == devnet.url


async def test_throttling_and_garbage_move_to_the_next_endpoint(
    failover_factory, proxy: RpcProxy, devnet: Devnet
) -> None:
    other = RpcProxy(devnet.url)
    try:
        proxy.status = 429
        other.garbage = True
        failover = failover_factory([proxy.url, other.url, devnet.url])
        address = await failover.harness.bind("u2")
        failover.harness.send(address)
        assert await failover.poll()
        assert len(await failover.harness.deposits()) == 1
        states = failover.states()
        assert "HTTP 429" in states[0][1]
        assert "not JSON" in states[1][1]
        assert states[2] == ("ok", "")
    finally:
        other.close()


async def test_when_every_endpoint_is_down_an_alert_fires_and_nothing_is_lost(
    failover_factory, proxy: RpcProxy
) -> None:
    failover = failover_factory([proxy.url])
    address = await failover.harness.bind("u3")
    proxy.garbage = True
    failover.harness.send(address)
    assert not await failover.poll()
    async with failover.harness.db.read() as conn:
        alerts = (await conn.execute(select(alert.c.subject, alert.c.state))).all()
    assert [tuple(a) for a in alerts] == [("rpc_all_down:devnet", "firing")]
    assert await failover.harness.deposits() == []
    # The endpoint recovers; once its back-off is over it is probed again and serves.
    proxy.garbage = False
    assert not await failover.poll()  # still set aside: not probed before its time
    failover.clock.now += 10
    assert await failover.poll()
    assert len(await failover.harness.deposits()) == 1
    async with failover.harness.db.read() as conn:
        alerts = (await conn.execute(select(alert.c.subject, alert.c.state))).all()
    assert [tuple(a) for a in alerts] == [("rpc_all_down:devnet", "resolved")]


async def test_a_capped_log_range_is_split_and_grows_back(
    db: Database, devnet: Devnet, proxy: RpcProxy, pool
) -> None:
    proxy.max_log_range = 3
    chain = chain_config(devnet, rpc_urls=[proxy.url], max_block_range=16)
    harness = Harness(db, devnet, pool, chain)
    try:
        addresses = [await harness.bind(f"r{n}") for n in range(4)]
        for n in range(10):
            harness.send(addresses[n % 4], (n + 1) * USDT)
        await harness.poll()
        assert sorted(r["amount"] for r in await harness.deposits()) == [
            (n + 1) * USDT for n in range(10)
        ]
        assert max(r for r in proxy.log_ranges if r <= 3) <= 3
        assert harness.watcher.block_range <= 3
        proxy.max_log_range = None
        anvil.mine(devnet.url, 40)
        for _ in range(6):
            await harness.poll()
            anvil.mine(devnet.url, 8)
        assert harness.watcher.block_range > 3  # adapts upward again after successes
    finally:
        await harness.client.close()


async def test_a_one_block_range_that_is_still_refused_fails_the_poll(
    db: Database, devnet: Devnet, proxy: RpcProxy, pool
) -> None:
    proxy.max_log_range = 0
    harness = Harness(db, devnet, pool, chain_config(devnet, rpc_urls=[proxy.url]))
    try:
        anvil.mine(devnet.url, 2)
        with pytest.raises(RpcError, match="one-block log query"):
            await harness.poll()
    finally:
        await harness.client.close()


# -- Tron: anvil stands in for java-tron's Ethereum-compatible JSON-RPC -----------------------


@pytest.fixture
async def tron(db: Database, devnet: Devnet, proxy: RpcProxy) -> AsyncIterator[Harness]:
    pool = await load_pool(db, "tron", 5)
    chain = chain_config(devnet, "tron", rpc_urls=[proxy.url], suspect_empty_after=3)
    harness = Harness(db, devnet, pool, chain)
    yield harness
    await harness.client.close()


async def test_tron_deposits_are_base58_with_bare_transaction_ids(
    tron: Harness, client, service_key
) -> None:
    address = await tron.bind("tron-user")
    assert address.startswith("T")
    tx = tron.send(address, 4 * USDT)
    await tron.poll()
    headers = {"Authorization": f"Bearer {service_key}"}
    body = (await client.get("/api/v1/deposits?depositReference=tron-user", headers=headers)).json()
    [shown] = body["data"]["deposits"]
    assert shown["address"] == address
    assert shown["protocol"] == "tron"
    assert shown["txHash"] == tx[2:]  # no 0x on Tron
    assert shown["from"].startswith("T") and len(shown["from"]) == 34
    assert shown["amount"] == "4"


async def test_a_failed_tron_transaction_with_logs_is_no_deposit(
    tron: Harness, proxy: RpcProxy
) -> None:
    address = await tron.bind("tron-user-2")
    failed = tron.send(address, USDT)
    kept = tron.send(address, 2 * USDT)
    proxy.failed_receipts.add(failed)  # java-tron keeps the logs of a failed transaction
    await tron.poll()
    assert [r["tx_hash"] for r in await tron.deposits()] == [kept[2:]]


async def test_a_node_with_no_logs_for_a_busy_token_is_suspect(
    tron: Harness, proxy: RpcProxy
) -> None:
    address = await tron.bind("tron-user-3")
    for _ in range(3):
        tron.send(address, USDT)
    proxy.empty_logs = True
    with pytest.raises(RpcError, match="no token logs in 3 blocks"):
        await tron.poll()
    assert await tron.deposits() == []
    proxy.empty_logs = False
    await tron.poll()
    assert len(await tron.deposits()) == 3


def test_endpoint_health_is_written_on_changes_and_moved_heads_at_most_every_few_seconds(
    monkeypatch,
) -> None:
    from chains import endpoints as module

    monkeypatch.setattr(module, "HEALTH_NOTE_SECONDS", 5.0)
    clock = Clock()
    notes = HealthNotes(clock)

    def views(head: int, *, failures: int = 0) -> list[dict]:
        state = "set_aside" if failures else "ok"
        return [
            {"endpoint": "a", "state": state, "reason": None, "failures": failures, "head": head}
        ]

    assert notes.due(views(1), all_down=False)  # nothing written yet
    notes.written(views(1), all_down=False)
    assert not notes.due(views(1), all_down=False)
    assert not notes.due(views(2), all_down=False)  # a moved head waits a little
    clock.now += 5
    assert notes.due(views(2), all_down=False)
    notes.written(views(2), all_down=False)
    assert not notes.due(views(2), all_down=False)  # 5 s on, but nothing moved
    assert notes.due(views(2, failures=1), all_down=False)  # a state change: at once
    assert notes.due(views(2), all_down=True)
