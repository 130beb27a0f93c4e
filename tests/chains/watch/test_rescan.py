from collections.abc import AsyncIterator

import pytest

from chains.endpoints import EndpointPool
from chains.rpc import RpcClient
from chains.watch.rescan import rescan
from pool.chain_state.repository import load_cursor
from pool.kit.db import Database
from pool.kit.errors import ValidationFailed
from scripts.devnet import anvil
from tests.chains.harness import USDT, Harness, chain_config
from tests.chains.rpc_proxy import RpcProxy
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import import_into_pool, load_pool, random_evm_address


class RescanHarness(Harness):
    @property
    def endpoints(self) -> EndpointPool:
        """The watcher's own endpoint, as the only one of the chain."""
        return EndpointPool([self.client], chain_id=self.chain.chain_id)


@pytest.fixture
async def harness(db: Database, devnet: Devnet) -> AsyncIterator[RescanHarness]:
    running = RescanHarness(db, devnet, await load_pool(db, "evm", 5), chain_config(devnet))
    yield running
    await running.client.close()


async def cursor_of(db: Database):  # noqa: ANN201
    async with db.read() as conn:
        return await load_cursor(conn, "devnet")


async def test_rescan_is_idempotent_and_leaves_the_cursor_alone(harness: RescanHarness) -> None:
    address = await harness.bind("u")
    harness.send(address)
    await harness.poll()
    before = await cursor_of(harness.db)
    start = harness.chain.start_block
    report = await rescan(
        harness.chain, harness.db, harness.endpoints, from_block=start, to_block=None
    )
    assert (report.transfers, report.recorded, report.reopened) == (1, 0, 0)
    assert report.to_block == before.block_number
    assert await cursor_of(harness.db) == before
    assert len(await harness.deposits()) == 1
    assert len(await harness.events()) == 1


async def test_rescan_finds_deposits_to_addresses_imported_after_their_block(
    harness: RescanHarness,
) -> None:
    customer_address = random_evm_address()  # not in the pool yet
    harness.send(customer_address, 3 * USDT)
    await harness.poll()
    assert await harness.deposits() == []
    # the operator imports it afterwards
    await import_into_pool(harness.db, "evm", [customer_address], actor="late")
    report = await rescan(
        harness.chain,
        harness.db,
        harness.endpoints,
        from_block=harness.chain.start_block,
        to_block=None,
    )
    assert report.recorded == 1
    [row] = await harness.deposits()
    assert row["amount"] == 3 * USDT and row["binding_id"] is None  # never bound: unattributed


async def test_rescan_refuses_what_the_watcher_has_not_reached(harness: RescanHarness) -> None:
    with pytest.raises(ValidationFailed, match="never been watched"):
        await rescan(harness.chain, harness.db, harness.endpoints, from_block=0, to_block=None)
    await harness.poll()
    cursor = await cursor_of(harness.db)
    with pytest.raises(ValidationFailed, match="nothing to rescan"):
        await rescan(
            harness.chain,
            harness.db,
            harness.endpoints,
            from_block=cursor.block_number + 1,
            to_block=None,
        )


class FailingAfter(RpcProxy):
    """Serves `ranges` log queries (and what checks them), then answers garbage: it dies in
    the middle of a rescan."""

    def __init__(self, upstream: str, ranges: int) -> None:
        super().__init__(upstream)
        self.ranges = ranges

    def answer(self, body: bytes) -> tuple[int, bytes]:
        if b"eth_getLogs" in body and len(self.log_ranges) >= self.ranges:
            self.garbage = True
        return super().answer(body)


async def test_an_endpoint_dying_mid_rescan_hands_over_where_it_stopped(
    db: Database, devnet: Devnet
) -> None:
    start = anvil.block_number(devnet.url) + 1
    late = [random_evm_address() for _ in range(4)]
    for address in late:  # one block each
        anvil.transfer(devnet.url, devnet.usdt, address, USDT)
    end = anvil.block_number(devnet.url)
    dying, standby = FailingAfter(devnet.url, ranges=2), RpcProxy(devnet.url)
    chain = chain_config(
        devnet, rpc_urls=[dying.url, standby.url], max_block_range=1, start_block=start
    )
    watching = RpcClient(devnet.url)  # the watcher's own, apart from the two under test
    harness = Harness(db, devnet, await load_pool(db, "evm", 3), chain, client=watching)
    try:
        await harness.poll()  # the watcher passes them by: not pool addresses yet
        await import_into_pool(db, "evm", late, actor="late")
        async with EndpointPool.for_chain(chain) as endpoints:
            report = await rescan(chain, db, endpoints, from_block=start, to_block=end)
            states = [v["state"] for v in endpoints.view()]
    finally:
        await harness.client.close()
        dying.close()
        standby.close()
    assert states == ["set_aside", "ok"]
    assert (report.transfers, report.recorded) == (4, 4)  # each counted once
    # The standby read only what the dying endpoint had not recorded: no block twice.
    assert (sum(dying.log_ranges), sum(standby.log_ranges)) == (2, end - start + 1 - 2)
    assert [r["amount"] for r in await harness.deposits()] == [USDT] * 4
