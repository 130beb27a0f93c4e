"""Upstream mode's check of PayIn's claims against the chain reads through the endpoint
failover: a lagging endpoint, which does not know a recent transaction yet, is never the one
that calls PayIn's deposit money that does not exist."""

from __future__ import annotations

from sqlalchemy import select

from chains.checks.upstream_check import UpstreamChecker
from pool.kit.clock import utc_now
from pool.kit.config import ChainSettings, Settings
from pool.kit.db import Database
from pool.kit.tables import alert, upstream_event
from pool.upstream.inbox import Verdict, store
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil
from tests.chains.harness import USDT, chain_settings
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import random_evm_address
from tests.fixtures.server import free_port


async def _announce(db: Database, tx_hash: str) -> None:
    """PayIn's `deposit.confirmed` for that transaction, as the inbox stores it."""
    payload = {
        "id": "evt_" + tx_hash[2:18],
        "type": "deposit.confirmed",
        "data": {"chainId": "devnet", "txHash": tx_hash, "amount": "1", "currency": "USDT"},
    }
    async with db.write() as conn:
        await store(conn, Verdict(True, None, payload), now=utc_now())


async def _checked(db: Database) -> list[tuple[str, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(select(upstream_event.c.status, upstream_event.c.reason))
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


def _settings(settings: Settings, devnet: Devnet, urls: list[str]) -> Settings:
    chain = ChainSettings(**{**chain_settings(devnet), "rpc_urls": urls, "rpc_timeout": 2})
    return settings.model_copy(update={"chains": {"devnet": chain}})


async def test_a_lagging_first_endpoint_does_not_make_a_real_deposit_not_on_chain(
    db: Database, settings: Settings, devnet: Devnet
) -> None:
    with Anvil() as behind:  # another chain, far behind: it has never seen the transaction
        anvil.mine(devnet.url, 10)
        tx_hash = anvil.transfer(devnet.url, devnet.usdt, random_evm_address(), USDT)
        await _announce(db, tx_hash)
        checker = UpstreamChecker(_settings(settings, devnet, [behind.url, devnet.url]), db)
        try:
            assert await checker.run_once() == 1
        finally:
            pass
    assert await _checked(db) == [("not_seen", "on chain, not recorded by our watcher yet")]
    async with db.read() as conn:
        assert (await conn.execute(select(alert))).all() == []


async def test_with_every_endpoint_down_the_claim_waits(
    db: Database, settings: Settings, devnet: Devnet
) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    await _announce(db, "0x" + "ab" * 32)
    checker = UpstreamChecker(_settings(settings, devnet, dead), db)
    try:
        await checker.run_once()
    finally:
        pass
    [(status, reason)] = await _checked(db)
    assert status == "not_seen"
    assert reason is not None and all(url in reason for url in dead)
