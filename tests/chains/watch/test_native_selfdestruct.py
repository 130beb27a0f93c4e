"""Value paid by a contract's SELFDESTRUCT, against a real anvil node (its default hardfork,
past Cancun: a contract that self-destructs keeps its code unless it was created in the same
transaction, and pays its balance either way), read with both tracers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from eth_utils.address import to_checksum_address
from sqlalchemy import select

from chains.checks.reconciler import reconcile
from chains.endpoints import EndpointPool
from chains.presets import resolve_chain
from chains.watch.rescan import rescan
from pool.kit.config import ChainSettings, ReconcileSettings, Settings
from pool.kit.db import Database
from pool.kit.tables import address
from scripts.devnet import anvil
from tests.chains.harness import CONFIRMATIONS, Harness, chain_settings
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool

ETH = 10**18


@pytest.fixture
async def pool(db: Database) -> list[str]:
    return await load_pool(db, "evm", 10)


async def addresses_of(db: Database, ids: list[int]) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(select(address.c.id, address.c.address))
        text_of = dict(rows.all())
    return [text_of[i] for i in ids]


@pytest.mark.parametrize("tracer", ["debug", "trace"])
async def test_a_selfdestruct_payout_is_an_internal_deposit_read_once_and_reconciled(
    db: Database, devnet: Devnet, pool: list[str], settings: Settings, tracer: str
) -> None:
    url = devnet.url
    toml = chain_settings(devnet, native=True, native_symbol="ETH", tracer=tracer)
    audited = settings.model_copy(
        update={
            "chains": {"devnet": ChainSettings(**toml)},
            "reconcile": ReconcileSettings(grace=timedelta(0), duty_cycle=1.0),
        }
    )
    harness = Harness(db, devnet, pool, resolve_chain("devnet", audited))
    first, second = pool[:2]
    try:
        dropper = anvil.deploy_dropper(url, first, 2 * ETH)
        called = anvil.drop(url, dropper)  # an account calls it: tx.0 pays 2 ETH
        assert anvil.rpc(url, "eth_getCode", [dropper, "latest"]) != "0x"  # kept (Cancun)
        created = anvil.create_and_drop(url, second, 3 * ETH)  # the constructor pays 3 ETH
        gone = anvil.receipt(url, created).raw["contractAddress"]
        assert anvil.rpc(url, "eth_getCode", [gone, "latest"]) == "0x"
        payer = anvil.deploy_payer(url)
        via = anvil.pay(url, payer, [dropper], [ETH])  # Payer calls it (tx.0), it pays (tx.0.0)
        # Payer's own call reverts around the payout: the transaction succeeds, nothing moved.
        anvil.pay(url, payer, [dropper], [ETH], mode=anvil.INNER_REVERT)
        anvil.drop(url, dropper)  # nothing left to pay: a SELFDESTRUCT of no value
        assert int(anvil.rpc(url, "eth_getBalance", [first, "latest"]), 16) == 3 * ETH
        assert int(anvil.rpc(url, "eth_getBalance", [second, "latest"]), 16) == 3 * ETH
        harness.mine(CONFIRMATIONS)
        await harness.poll()
        rows = await harness.deposits()
        to = await addresses_of(db, [r["address_id"] for r in rows])
        assert [
            (r["tx_hash"], r["trace_position"], r["amount"], r["from_address"], to[i])
            for i, r in enumerate(rows)
        ] == [
            (called, "tx.0", 2 * ETH, dropper, first),
            (created, "tx.0", 3 * ETH, to_checksum_address(gone), second),
            (via, "tx.0.0", ETH, dropper, first),
        ]
        assert {(r["currency"], r["status"]) for r in rows} == {("ETH", "confirmed")}
        start, end = rows[0]["block_number"], rows[-1]["block_number"]
        async with EndpointPool.for_chain(harness.chain) as endpoints:
            report = await rescan(harness.chain, db, endpoints, from_block=start, to_block=end)
        assert (report.transfers, report.recorded) == (3, 0)
        found = await reconcile(audited, db)
        assert [i for i in found["items"] if i["category"] == "mismatch"] == []
    finally:
        await harness.client.close()
