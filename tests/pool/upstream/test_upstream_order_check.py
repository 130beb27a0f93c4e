"""Upstream mode: PayIn's `order.*` webhooks checked against our own observation (both
databases; pool/upstream/order_check.py through the checker's worker), and what reconciliation
reports of the ones that did not check out."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from chains.checks.upstream_check import UpstreamChecker
from chains.presets import ChainConfig, watched_chains
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import alert, deposit, upstream_event
from pool.reconciliation.service import CATEGORIES, check_upstream
from pool.upstream import repository as repo
from pool.upstream.inbox import Verdict, store
from tests.api.test_orders_lifecycle_api import link_payment
from tests.fixtures.helpers import load_pool
from tests.fixtures.order_rows import add_order
from tests.fixtures.orders import order_settings

AMOUNT = 10_500_000  # 10.5 USDT


@pytest.fixture
def upstream_settings(database_url: str) -> Settings:
    return order_settings(
        database_url,
        binding_backend="payin",
        upstream_url="https://payin.example/api/v1",
        upstream_api_key="pk_test_upstream",
    )


def sepolia(settings: Settings) -> ChainConfig:
    return next(c for c in watched_chains(settings) if c.chain_id == "ethereum-sepolia")


async def an_order(db: Database, settings: Settings, paid: str | None = None) -> dict[str, Any]:
    """A pending order of ours for 10.5 USDT; paid in time with a transfer of that status."""
    order_id, _ = await add_order(
        db, sepolia(settings), amount=AMOUNT, created_at=utc_now() - timedelta(minutes=1)
    )
    order = {"orderId": order_id, "chainId": "ethereum-sepolia", "currency": "USDT"}
    if paid is not None:
        await link_payment(db, order, n=int(secrets.randbelow(10**6)), amount=AMOUNT, status=paid)
    return order


async def announce(db: Database, kind: str, order_id: str, **data: Any) -> str:
    """PayIn's event, as the inbox stores it."""
    event_id = "evt_" + secrets.token_hex(8)
    payload = {
        "id": event_id,
        "type": kind,
        "data": {"orderId": order_id, "status": kind.split(".")[1], **data},
    }
    async with db.write() as conn:
        await store(conn, Verdict(True, None, payload), now=utc_now())
    return event_id


async def checked(db: Database, settings: Settings) -> dict[str, tuple[str, str | None]]:
    checker = UpstreamChecker(settings, db)
    try:
        await checker.run_once()
    finally:
        await checker.close()
    async with db.read() as conn:
        rows = await conn.execute(
            select(upstream_event.c.event_id, upstream_event.c.status, upstream_event.c.reason)
        )
        return {event_id: (status, reason) for event_id, status, reason in rows.all()}


async def discrepancy_alerts(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(alert.c.subject, alert.c.severity).where(alert.c.kind == "upstream_discrepancy")
        )
        return {subject.split(":", 1)[1]: severity for subject, severity in rows.all()}


async def test_payins_order_ends_that_agree_with_the_chain_are_matched(
    db: Database, upstream_settings: Settings
) -> None:
    await load_pool(db, "evm", 4)
    paid = await an_order(db, upstream_settings, paid="confirmed")
    unpaid = await an_order(db, upstream_settings)
    cancelled = await an_order(db, upstream_settings)
    events = [
        await announce(db, "order.completed", paid["orderId"], amount="10.5", currency="USDT"),
        await announce(db, "order.expired", unpaid["orderId"]),
        await announce(db, "order.cancelled", cancelled["orderId"]),
    ]
    found = await checked(db, upstream_settings)
    assert {found[e][0] for e in events} == {"matched"}
    assert await discrepancy_alerts(db) == {}


async def test_each_disagreement_is_found_and_alerted(
    db: Database, upstream_settings: Settings
) -> None:
    await load_pool(db, "evm", 4)
    unpaid = await an_order(db, upstream_settings)
    paid = await an_order(db, upstream_settings, paid="confirmed")
    other = await an_order(db, upstream_settings)
    late = upstream_settings.model_copy(update={"upstream_grace": timedelta(0)})
    completed_unpaid = await announce(db, "order.completed", unpaid["orderId"])
    expired_paid = await announce(db, "order.expired", paid["orderId"])
    unknown = await announce(db, "order.completed", "ord_" + "f" * 32)
    wrong_amount = await announce(db, "order.expired", other["orderId"], amount="99")
    found = await checked(db, late)
    assert found[completed_unpaid][0] == "order_unpaid"
    assert "0 of 10.5 USDT" in str(found[completed_unpaid][1])
    assert found[expired_paid][0] == "order_paid"
    assert found[unknown][0] == "order_unknown"
    assert found[wrong_amount] == ("mismatched", "amount: PayIn 99, ours 10.5")
    assert await discrepancy_alerts(db) == {
        e: "critical" for e in (completed_unpaid, expired_paid, unknown, wrong_amount)
    }

    async with db.read() as conn:
        unresolved = await repo.unresolved_events(conn, since=utc_now() - timedelta(hours=1))
    categories = {f.key: f.category for f in check_upstream([], unresolved)}
    assert categories == {
        completed_unpaid: "upstream_order_unpaid",
        expired_paid: "upstream_order_paid",
        unknown: "upstream_order_unknown",
        wrong_amount: "upstream_mismatch",
    }
    assert {CATEGORIES[c].severity for c in categories.values()} == {"critical"}


async def test_within_the_grace_our_lagging_confirmations_are_waited_for(
    db: Database, upstream_settings: Settings
) -> None:
    await load_pool(db, "evm", 2)
    unconfirmed = await an_order(db, upstream_settings, paid="pending")
    unpaid = await an_order(db, upstream_settings)
    completed = await announce(db, "order.completed", unconfirmed["orderId"])
    expired = await announce(db, "order.expired", unconfirmed["orderId"])
    not_yet = await announce(db, "order.completed", unpaid["orderId"])
    found = await checked(db, upstream_settings)  # grace: 30 minutes
    assert {found[e][0] for e in (completed, expired, not_yet)} == {"not_seen"}
    assert await discrepancy_alerts(db) == {}
    async with db.write() as conn:  # our watcher confirms the payment
        await conn.execute(
            update(deposit)
            .where(deposit.c.order_id == unconfirmed["orderId"])
            .values(status="confirmed")
        )
    found = await checked(db, upstream_settings)
    assert found[completed][0] == "matched"
    assert found[expired][0] == "order_paid"
    assert found[not_yet][0] == "not_seen"
