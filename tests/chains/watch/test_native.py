"""Deposits of the chain's own coin against a real anvil node: sent by an account (top-level)
and by a contract (internal, read with the call tracer or `trace_block`)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from chains.checks.reconciler import reconcile
from chains.endpoints import EndpointPool
from chains.presets import ChainConfig, order_chains, resolve_chain
from chains.rpc import RpcClient
from chains.watch.rescan import rescan
from chains.watch.runner import note_endpoints, poll_with_failover
from pool.deposits.payloads import deposit_payload
from pool.deposits.repository import deposits_by_ids
from pool.kit.clock import utc_now
from pool.kit.config import ChainSettings, ReconcileSettings, Settings
from pool.kit.config_sections import OrderSettings
from pool.kit.db import Database
from pool.kit.tables import deposit
from pool.orders.records import OrderAsk
from pool.orders.service import create_order
from scripts.devnet import anvil
from tests.chains.harness import CONFIRMATIONS, USDT, Harness, chain_config, chain_settings
from tests.chains.rpc_proxy import RpcProxy
from tests.fixtures.cli import run_cli
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool
from tests.fixtures.order_rows import chain_now, order_events, order_shown, stamp_next_block

ETH = 10**18
TRACE_METHODS = {"debug_traceBlockByNumber", "trace_block"}


def native_chain(devnet: Devnet, tracer: str = "auto", **overrides: Any) -> ChainConfig:
    return chain_config(
        devnet,
        native=True,
        native_symbol="ETH",
        native_min_amount="0.001",
        tracer=tracer,
        **overrides,
    )


@pytest.fixture
async def pool(db: Database) -> list[str]:
    return await load_pool(db, "evm", 10)


# Each tracer with one backend: both tracers and both databases, in half the runs of every pair.
TRACER_OF = {"sqlite": "debug", "postgresql": "trace"}


@pytest.fixture
async def traced(
    backend: str, db: Database, devnet: Devnet, pool: list[str]
) -> AsyncIterator[Harness]:
    """A watcher of the devnet's coin, reading internal transfers with the call tracer
    (SQLite) or `trace_block` (PostgreSQL)."""
    running = Harness(db, devnet, pool, native_chain(devnet, TRACER_OF[backend]))
    yield running
    await running.client.close()


async def test_an_account_sending_eth_is_a_deposit_announced_in_eth(
    db: Database, devnet: Devnet, pool: list[str]
) -> None:
    harness = Harness(db, devnet, pool, native_chain(devnet))
    try:
        address = await harness.bind("user-eth")
        tx = anvil.send_value(devnet.url, address, ETH // 2)
        dust = anvil.send_value(devnet.url, address, 10**14)  # below 0.001 ETH
        await harness.poll()
        assert harness.watcher.tracer == "debug"  # "auto" asked anvil: the call tracer answers
        rows = await harness.deposits()
        assert [
            (r["tx_hash"], r["trace_position"], r["log_index"], r["currency"], r["status"])
            for r in rows
        ] == [(tx, "tx", -1, "ETH", "pending"), (dust, "tx", -1, "ETH", "dust")]
        assert (rows[0]["amount"], rows[0]["decimals"], rows[0]["token_contract"]) == (
            ETH // 2,
            18,
            "native",
        )
        harness.mine(CONFIRMATIONS)
        await harness.poll()
        async with db.read() as conn:
            shown = deposit_payload((await deposits_by_ids(conn, [rows[0]["id"]]))[rows[0]["id"]])
        assert (shown["currency"], shown["amount"], shown["status"]) == ("ETH", "0.5", "confirmed")
        assert (shown["logIndex"], shown["tracePosition"], shown["from"]) == (
            None,
            "tx",
            devnet.sender,
        )
        assert [e[:3:2] for e in await harness.events()] == [
            ("deposit.pending", "pending"),
            ("deposit.confirmed", "confirmed"),
        ]
    finally:
        await harness.client.close()


async def test_a_contract_forwarding_eth_is_an_internal_deposit(traced: Harness) -> None:
    url = traced.devnet.url
    payer = anvil.deploy_payer(url)
    address = await traced.bind("user-forward")
    tx = anvil.pay(url, payer, [address], [2 * ETH])
    await traced.poll()
    [row] = await traced.deposits()
    assert (row["tx_hash"], row["trace_position"], row["amount"], row["from_address"]) == (
        tx,
        "tx.0",
        2 * ETH,
        payer,
    )
    assert row["binding_id"] is not None
    assert [e[0] for e in await traced.events()] == ["deposit.pending"]


async def test_value_sent_in_a_frame_that_reverted_is_no_deposit(traced: Harness) -> None:
    url = traced.devnet.url
    payer = anvil.deploy_payer(url)
    first, second = traced.pool[:2]
    failed = anvil.pay(url, payer, [first], [ETH], mode=anvil.REVERT)
    assert anvil.receipt(url, failed).status == 0
    # The transaction succeeds; the inner call that paid both reverted, and its payments with it.
    undone = anvil.pay(url, payer, [first, second], [ETH, ETH], mode=anvil.INNER_REVERT)
    assert anvil.receipt(url, undone).status == 1
    assert anvil.rpc(url, "eth_getBalance", [first, "latest"]) == "0x0"
    paid = anvil.pay(url, payer, [second], [3 * ETH])
    await traced.poll()
    assert [(r["tx_hash"], r["amount"]) for r in await traced.deposits()] == [(paid, 3 * ETH)]


async def test_a_batch_paying_five_pool_addresses_is_five_deposits_recorded_once(
    traced: Harness,
) -> None:
    url = traced.devnet.url
    payer = anvil.deploy_payer(url)
    recipients = traced.pool[:5]
    tx = anvil.pay(url, payer, recipients, [n * ETH for n in range(1, 6)])
    await traced.poll()
    rows = await traced.deposits()
    assert sorted((r["trace_position"], r["amount"]) for r in rows) == [
        (f"tx.{n}", (n + 1) * ETH) for n in range(5)
    ]
    assert {r["tx_hash"] for r in rows} == {tx}
    assert len({r["id"] for r in rows}) == 5
    assert {r["status"] for r in rows} == {"pending"}
    # Read again by a rescan: the same identity, nothing twice.
    block = rows[0]["block_number"]
    async with EndpointPool.for_chain(traced.chain) as endpoints:
        report = await rescan(traced.chain, traced.db, endpoints, from_block=block, to_block=block)
    assert (report.transfers, report.recorded) == (5, 0)
    assert len(await traced.deposits()) == 5


async def test_reorg_of_a_native_deposit_reverts_it_and_brings_it_back(traced: Harness) -> None:
    url = traced.devnet.url
    payer = anvil.deploy_payer(url)
    address = await traced.bind("user-reorg")
    top = anvil.send_value(url, address, ETH)
    inner = anvil.pay(url, payer, [address], [ETH])
    await traced.poll()
    before = {r["trace_position"]: r for r in await traced.deposits()}
    assert set(before) == {"tx", "tx.0"}
    anvil.reorg(url, 2)  # both blocks replaced, both transactions gone
    report = await traced.poll()
    assert report.reorgs == 1
    assert {r["status"] for r in await traced.deposits()} == {"reverted"}
    assert [e[0] for e in await traced.events()].count("deposit.reverted") == 2
    # Sent again (new transactions): new deposits; the reverted rows stay reverted.
    again = anvil.pay(url, payer, [address], [ETH])
    traced.mine(CONFIRMATIONS)
    await traced.poll()
    rows = {r["tx_hash"]: r for r in await traced.deposits()}
    assert (rows[top]["status"], rows[inner]["status"], rows[again]["status"]) == (
        "reverted",
        "reverted",
        "confirmed",
    )


async def test_without_a_trace_api_top_level_is_still_recorded_and_health_says_so(
    db: Database, devnet: Devnet, pool: list[str], client: Any, settings: Settings
) -> None:
    proxy = RpcProxy(devnet.url)
    proxy.refused_methods = set(TRACE_METHODS)
    chain = native_chain(devnet, rpc_urls=[proxy.url])
    rpc = RpcClient(proxy.url)
    harness = Harness(db, devnet, pool, chain, rpc)
    endpoints = EndpointPool([rpc], max_lag=chain.max_lag)
    try:
        payer = anvil.deploy_payer(devnet.url)
        top = anvil.send_value(devnet.url, pool[0], ETH)
        anvil.pay(devnet.url, payer, [pool[1]], [ETH])
        watcher = await harness.lead()
        assert await poll_with_failover(watcher, endpoints, None)
        assert watcher.tracer == "none"
        assert [(r["tx_hash"], r["trace_position"]) for r in await harness.deposits()] == [
            (top, "tx")
        ]
        endpoints.note(watcher.client, watcher.internal_transfers_note)
        await note_endpoints(watcher, endpoints, all_down=False)
        message = "internal transfers not watched on devnet: the node has no trace API"
        health = (await client.get("/health")).json()
        assert message in health["problems"]
        assert health["checks"]["chains"]["devnet"]["endpoints"][0]["note"] == message
        devnet_chain = {"protocol": "evm", "rpc_urls": [proxy.url], "native": True}
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")},
            "ADDRPOOL_DATABASE_URL": settings.database_url,
            "ADDRPOOL_NETWORK": "testnet",
            "ADDRPOOL_CHAINS": json.dumps({"devnet": {**devnet_chain, "native_symbol": "ETH"}}),
        }
        assert message in run_cli(["chains"], env=env, check=True).stdout
    finally:
        await rpc.close()
        proxy.close()


async def test_a_tracer_the_node_refuses_sets_the_endpoint_aside(
    db: Database, devnet: Devnet, pool: list[str]
) -> None:
    """Configured, not probed: a node without it cannot serve the chain (nothing is skipped)."""
    proxy = RpcProxy(devnet.url)
    proxy.refused_methods = {"trace_block"}
    chain = native_chain(devnet, "trace", rpc_urls=[proxy.url])
    rpc = RpcClient(proxy.url)
    harness = Harness(db, devnet, pool, chain, rpc)
    endpoints = EndpointPool([rpc], max_lag=chain.max_lag)
    try:
        anvil.send_value(devnet.url, pool[0], ETH)
        watcher = await harness.lead()
        assert not await poll_with_failover(watcher, endpoints, None)
        assert "trace_block" in (endpoints.view()[0]["reason"] or "")
        assert await harness.deposits() == []
    finally:
        await rpc.close()
        proxy.close()


async def test_a_token_only_chain_reads_no_block_bodies_nor_traces(
    db: Database, devnet: Devnet, pool: list[str]
) -> None:
    proxy = RpcProxy(devnet.url)
    rpc = RpcClient(proxy.url)
    harness = Harness(db, devnet, pool, chain_config(devnet, rpc_urls=[proxy.url]), rpc)
    try:
        harness.send(pool[0], USDT)
        anvil.send_value(devnet.url, pool[0], ETH)
        await harness.poll()
        assert [r["currency"] for r in await harness.deposits()] == ["USDT"]
        assert not TRACE_METHODS & set(proxy.methods)
        assert proxy.full_blocks == 0
    finally:
        await rpc.close()
        proxy.close()


async def test_an_order_in_eth_is_completed_by_a_contract_payout(
    db: Database, devnet: Devnet, pool: list[str]
) -> None:
    chain_toml = chain_settings(devnet, native=True, native_symbol="ETH", tracer="trace")
    settings = Settings(network="testnet", chains={"devnet": chain_toml})
    harness = Harness(db, devnet, pool, resolve_chain("devnet", settings))
    try:
        await harness.poll()
        ask = OrderAsk(reference="ord-eth", amount="1.5", currency="ETH", chain_id="devnet")
        created = await create_order(
            db,
            ask=ask,
            chains=order_chains(settings),
            settings=OrderSettings(),
            allow_http_urls=True,
            base_url="http://addrpool.test",
            actor="t",
        )
        order_id, to = created.order["orderId"], created.order["address"]
        # Paid after the order was created, on the chain's clock as on ours.
        moment = max(chain_now(devnet.url), utc_now()) + timedelta(seconds=2)
        stamp_next_block(devnet.url, moment)
        payer = anvil.deploy_payer(devnet.url)
        tx = anvil.pay(devnet.url, payer, [to], [3 * ETH // 2])
        harness.mine(CONFIRMATIONS)
        await harness.poll()
        shown = await order_shown(db, order_id)
        assert (shown["status"], shown["txHash"], shown["confirmedReceived"]) == (
            "completed",
            tx,
            "1.5",
        )
        assert [kind for kind, _ in await order_events(db)] == ["order.created", "order.completed"]
    finally:
        await harness.client.close()


async def test_reconciliation_reads_native_deposits_again(
    db: Database, devnet: Devnet, pool: list[str], settings: Settings, backend: str
) -> None:
    """Top-level from the transaction, internal from its trace: clean as recorded; a row
    tampered with (amount, position) is a mismatch."""
    chain_toml = chain_settings(devnet, native=True, native_symbol="ETH", tracer=TRACER_OF[backend])
    audited = settings.model_copy(
        update={
            "chains": {"devnet": ChainSettings(**chain_toml)},
            "reconcile": ReconcileSettings(grace=timedelta(0), duty_cycle=1.0),
        }
    )
    harness = Harness(db, devnet, pool, resolve_chain("devnet", audited))
    try:
        payer = anvil.deploy_payer(devnet.url)
        address = await harness.bind("user-audit")
        anvil.send_value(devnet.url, address, ETH)
        anvil.pay(devnet.url, payer, [pool[3], address], [ETH, 2 * ETH])
        harness.mine(CONFIRMATIONS)
        await harness.poll()
        rows = {r["trace_position"]: r for r in await harness.deposits()}
        assert set(rows) == {"tx", "tx.0", "tx.1"}
        clean = await reconcile(audited, db)
        assert [i for i in clean["items"] if i["category"] == "mismatch"] == []
        async with db.write() as conn:
            for position, values in (("tx", {"amount": 5 * ETH}), ("tx.1", {"amount": ETH})):
                await conn.execute(
                    update(deposit).where(deposit.c.id == rows[position]["id"]).values(**values)
                )
        report = await reconcile(audited, db)
        found = {
            i["depositId"]: i["detail"] for i in report["items"] if i["category"] == "mismatch"
        }
        assert found == {
            rows["tx"]["id"]: f"amount on chain {ETH}, recorded {5 * ETH} (base units)",
            rows["tx.1"]["id"]: f"amount on chain {2 * ETH}, recorded {ETH} (base units)",
        }
    finally:
        await harness.client.close()
