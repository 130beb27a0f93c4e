from collections.abc import AsyncIterator

import pytest

from chains.codec import address_parser
from chains.rescan import rescan
from pool.clock import utc_now
from pool.db import Database
from pool.errors import ValidationFailed
from pool.import_formats import RawRow
from pool.importer import ImportSource, import_addresses
from pool.repository.chain_state import load_cursor
from tests.chains.harness import USDT, Harness, chain_config
from tests.devnet import Devnet
from tests.helpers import load_pool, random_evm_address


@pytest.fixture
async def harness(db: Database, devnet: Devnet) -> AsyncIterator[Harness]:
    running = Harness(db, devnet, await load_pool(db, "evm", 5), chain_config(devnet))
    yield running
    await running.client.close()


async def cursor_of(db: Database):  # noqa: ANN201
    async with db.read() as conn:
        return await load_cursor(conn, "devnet")


async def test_rescan_is_idempotent_and_leaves_the_cursor_alone(harness: Harness) -> None:
    address = await harness.bind("u")
    harness.send(address)
    await harness.poll()
    before = await cursor_of(harness.db)
    start = harness.chain.start_block
    report = await rescan(
        harness.chain, harness.db, harness.client, from_block=start, to_block=None
    )
    assert (report.transfers, report.recorded, report.reopened) == (1, 0, 0)
    assert report.to_block == before.block_number
    assert await cursor_of(harness.db) == before
    assert len(await harness.deposits()) == 1
    assert len(await harness.events()) == 1


async def test_rescan_finds_deposits_to_addresses_imported_after_their_block(
    harness: Harness,
) -> None:
    customer_address = random_evm_address()  # not in the pool yet
    harness.send(customer_address, 3 * USDT)
    await harness.poll()
    assert await harness.deposits() == []
    async with harness.db.write() as conn:  # the operator imports it afterwards
        await import_addresses(
            conn,
            protocol="evm",
            rows=[RawRow(1, customer_address)],
            parser=address_parser("evm"),
            source=ImportSource("test", "late"),
            now=utc_now(),
        )
    report = await rescan(
        harness.chain,
        harness.db,
        harness.client,
        from_block=harness.chain.start_block,
        to_block=None,
    )
    assert report.recorded == 1
    [row] = await harness.deposits()
    assert row["amount"] == 3 * USDT and row["binding_id"] is None  # never bound: unattributed


async def test_rescan_refuses_what_the_watcher_has_not_reached(harness: Harness) -> None:
    with pytest.raises(ValidationFailed, match="never been watched"):
        await rescan(harness.chain, harness.db, harness.client, from_block=0, to_block=None)
    await harness.poll()
    cursor = await cursor_of(harness.db)
    with pytest.raises(ValidationFailed, match="nothing to rescan"):
        await rescan(
            harness.chain,
            harness.db,
            harness.client,
            from_block=cursor.block_number + 1,
            to_block=None,
        )
