"""Reconciliation of orders against a real anvil node, a real receiver and both databases:
a clean order history gives no discrepancy; each corrupted one is named in the report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from chains.checks.reconciler import reconcile
from pool.kit.clock import utc_now
from pool.kit.config import ChainSettings, ReconcileSettings, Settings
from pool.kit.config_sections import OrderSettings
from pool.kit.db import Database
from pool.kit.tables import alert, delivery, deposit, payment_link, payment_order
from pool.orders.expiry import expire_batch
from pool.reconciliation.service import LINK_INVENTORY
from pool.webhooks.delivery import DeliveryWorker
from scripts.cli.reconcile import report_text
from tests.chains.harness import CONFIRMATIONS, USDT, Harness, chain_settings
from tests.fixtures.devnet import Devnet
from tests.fixtures.order_rows import add_order, chain_now, mine_past, stamp_next_block
from tests.pool.webhooks.test_delivery import deliver_all, endpoint

ORDER_EVENTS = ["order.completed", "order.expired"]


@pytest.fixture
def audit_settings(settings: Settings, devnet: Devnet) -> Settings:
    """The devnet chain watched, and no grace: an order event is due at once."""
    return settings.model_copy(
        update={
            "chains": {"devnet": ChainSettings(**chain_settings(devnet))},
            "reconcile": ReconcileSettings(grace=timedelta(0), duty_cycle=1.0),
        }
    )


async def started(harness: Harness) -> datetime:
    """The watcher has its cursor; the chain's clock now (the shared node's clock may be set
    back by another test's reorg), which the next blocks follow."""
    await harness.poll()
    start = chain_now(harness.devnet.url)
    stamp_next_block(harness.devnet.url, start + timedelta(seconds=1))
    return start


async def paid_order(harness: Harness, start: datetime, amount: int = 5 * USDT) -> str:
    """An order paid in full and confirmed: the watcher completes it."""
    order_id, to = await add_order(harness.db, harness.chain, amount=amount, created_at=start)
    harness.send(to, amount)
    harness.mine(CONFIRMATIONS - 1)
    await harness.poll()
    assert await order_status(harness.db, order_id) == "completed"
    return order_id


async def run(settings: Settings, db: Database, start: datetime) -> dict[str, Any]:
    """A run whose window holds the orders (made on the chain's clock) and their deposits
    (detected on ours)."""
    return await reconcile(settings, db, since=min(start, utc_now()) - timedelta(hours=1))


async def order_status(db: Database, order_id: str) -> str:
    async with db.read() as conn:
        return str(
            await conn.scalar(select(payment_order.c.status).where(payment_order.c.id == order_id))
        )


async def set_order(db: Database, order_id: str, **values: Any) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(payment_order).where(payment_order.c.id == order_id).values(**values)
        )


def reported(report: dict[str, Any], category: str) -> list[dict[str, Any]]:
    return [item for item in report["items"] if item["category"] == category]


async def firing_subjects(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(alert.c.subject).where(
                alert.c.state == "firing", alert.c.kind == "reconciliation_discrepancy"
            )
        )
        return sorted(rows.scalars().all())


async def test_a_clean_order_history_reports_no_discrepancy(
    harness: Harness, audit_settings: Settings, db: Database, receivers
) -> None:
    receiver = receivers()
    await endpoint(db, audit_settings, receiver.url, ORDER_EVENTS)
    start = await started(harness)
    # Every order made first: `add_order` takes the first available address, and an ended
    # order's address is available again (cooling down).
    # An order paid short, left to expire after its grace (30 s in).
    short, to = await add_order(
        db,
        harness.chain,
        amount=5 * USDT,
        created_at=start,
        window=timedelta(seconds=30),
        grace=timedelta(0),
    )
    # Overpaid: no payment of exactly its amount, so its sum is compared in full.
    overpaid, overpaid_to = await add_order(db, harness.chain, amount=5 * USDT, created_at=start)
    completed = await paid_order(harness, start)
    harness.send(overpaid_to, 6 * USDT)
    harness.send(to, 2 * USDT)
    harness.mine(CONFIRMATIONS - 1)
    await harness.poll()
    assert await order_status(db, overpaid) == "completed"
    mine_past(harness.devnet.url, start + timedelta(seconds=31))
    await harness.poll()
    async with db.write() as conn:
        await expire_batch(conn, settings=OrderSettings(), now=start + timedelta(seconds=31))
    assert await order_status(db, short) == "expired"
    await deliver_all(DeliveryWorker(db, audit_settings))

    report = await run(audit_settings, db, start)
    assert report["ordersChecked"] == 3
    assert report["items"] == [], report["items"]
    assert report["discrepancies"] == 0
    assert report["chains"]["devnet"]["verifiedOnChain"] == 3  # the orders' transfers re-read
    assert await firing_subjects(db) == []
    assert len({completed, overpaid, short}) == 3


async def test_a_completed_order_short_of_its_amount_is_underpaid(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    start = await started(harness)
    order_id = await paid_order(harness, start)
    await set_order(db, order_id, amount=6 * USDT)  # it asked more than it was paid

    report = await run(audit_settings, db, start)
    [item] = reported(report, "order_underpaid")
    assert (item["orderId"], item["chainId"], item["severity"]) == (order_id, "devnet", "critical")
    assert item["detail"] == "completed with 5 of 6 USDT confirmed on chain"
    assert report["counts"]["order_underpaid"] == 1
    shown = report_text(report)  # `addrpool reconcile`'s table names the order
    assert "orders: 1" in shown and order_id in shown
    assert await firing_subjects(db) == [f"reconciliation:order_underpaid:{order_id}"]

    # A later run whose window no longer holds the order has not looked at it again: its
    # episode stays open (it resolves only when a check finds the order right).
    later = await reconcile(audit_settings, db, since=utc_now() + timedelta(minutes=1))
    assert later["alerts"]["resolved"] == 0
    assert await firing_subjects(db) == [f"reconciliation:order_underpaid:{order_id}"]

    await set_order(db, order_id, amount=5 * USDT)  # put right: the alert resolves
    clean = await run(audit_settings, db, start)
    assert clean["discrepancies"] == 0
    assert clean["alerts"]["resolved"] == 1
    assert await firing_subjects(db) == []


async def test_a_payment_the_chain_does_not_vouch_for_leaves_its_order_underpaid(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    """The ledger sums right, but the chain re-read finds no such Transfer log: the payment
    does not count, and the order is reported as well as the transfer."""
    start = await started(harness)
    order_id = await paid_order(harness, start)
    async with db.write() as conn:
        await conn.execute(
            update(deposit).where(deposit.c.order_id == order_id).values(log_index=9)
        )

    report = await run(audit_settings, db, start)
    [mismatch] = reported(report, "mismatch")
    assert "no log at index 9" in mismatch["detail"]
    [item] = reported(report, "order_underpaid")
    assert item["orderId"] == order_id
    assert item["detail"] == "completed with 0 of 5 USDT confirmed on chain"


async def test_an_expired_order_paid_in_time_is_reported(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    start = await started(harness)
    order_id = await paid_order(harness, start)
    # As if the expiry worker had ended it instead of the payment.
    await set_order(
        db, order_id, status="expired", expired_at=utc_now(), completed_at=None, completed_by=None
    )

    report = await run(audit_settings, db, start)
    [item] = reported(report, "order_paid_but_expired")
    assert (item["orderId"], item["severity"]) == (order_id, "critical")
    [row] = await harness.deposits()
    assert (item["txHash"], item["blockNumber"]) == (row["tx_hash"], row["block_number"])
    assert item["detail"] == "expired, yet 5 of 5 USDT confirmed, mined in time"
    assert reported(report, "order_underpaid") == []
    assert await firing_subjects(db) == [f"reconciliation:order_paid_but_expired:{order_id}"]


async def test_an_expired_order_paid_after_its_grace_is_not_a_discrepancy(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    start = await started(harness)
    order_id = await paid_order(harness, start)
    # The order's grace ended before the payment's block: it was rightly expired.
    await set_order(
        db,
        order_id,
        status="expired",
        grace_ends_at=start,
        window_ends_at=start,
        completed_at=None,
        completed_by=None,
    )
    report = await run(audit_settings, db, start)
    assert reported(report, "order_paid_but_expired") == []
    assert report["discrepancies"] == 0


async def test_an_unacknowledged_order_event_is_reported_then_requeued_then_resolved(
    harness: Harness, audit_settings: Settings, db: Database, receivers
) -> None:
    """The deposit check keys on `deposit.confirmed` per deposit and skips orders' transfers:
    order events are checked on their own, by event."""
    # The receiver refuses the order.completed delivery (a final 4xx), then accepts.
    receiver = receivers((400, {}, 0.0), (200, {}, 0.0))
    await endpoint(db, audit_settings, receiver.url, ["order.completed"])
    start = await started(harness)
    order_id = await paid_order(harness, start)
    worker = DeliveryWorker(db, audit_settings)
    await deliver_all(worker)
    assert [d["status"] for d in await deliveries(db)] == ["failed"]

    report = await run(audit_settings, db, start)
    [item] = reported(report, "order_not_acknowledged")
    assert (item["orderId"], item["severity"]) == (order_id, "warning")
    assert item["detail"].startswith("order.completed evt_")
    assert reported(report, "not_acknowledged") == []
    assert report["repairs"]["requeuedDeliveries"] == 1
    [row] = await deliveries(db)
    assert (row["status"], row["requeues"]) == ("pending", 1)
    [subject] = await firing_subjects(db)
    assert subject.startswith("reconciliation:order_not_acknowledged:evt_")

    await deliver_all(worker)  # the re-enqueued delivery now succeeds
    assert [d["status"] for d in await deliveries(db)] == ["succeeded"]
    clean = await run(audit_settings, db, start)
    assert clean["discrepancies"] == 0
    assert clean["alerts"]["resolved"] == 1
    assert await firing_subjects(db) == []


async def deliveries(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(select(delivery))).all()]


async def test_a_payment_links_inventory_that_disagrees_with_its_orders_is_reported(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    """Invariant 16, checked over every link on each run: a unit neither reserved by a pending
    order nor sold to a completed one is named, and resolves once right again."""
    start = await started(harness)
    order_id = await paid_order(harness, start)
    link_id = "pl_" + "ab" * 16
    async with db.write() as conn:
        await conn.execute(
            insert(payment_link).values(
                id=link_id,
                slug="inventory-01",
                title="Invoice",
                amount="5",
                currencies=[{"currency": "USDT", "chainId": "devnet"}],
                status="published",
                inventory_total=3,
                inventory_sold=1,
                created_at=start,
                updated_at=start,
                created_by="test",
            )
        )
    await set_order(db, order_id, payment_link_id=link_id)
    assert reported(await run(audit_settings, db, start), LINK_INVENTORY) == []

    async with db.write() as conn:  # a unit sold twice
        await conn.execute(
            update(payment_link).where(payment_link.c.id == link_id).values(inventory_sold=2)
        )
    report = await run(audit_settings, db, start)
    [item] = reported(report, LINK_INVENTORY)
    assert item["severity"] == "critical"
    assert item["detail"] == (
        f"payment link {link_id}: 0 reserved for 0 pending order(s), 2 sold for 1 completed "
        "order(s)"
    )
    assert await firing_subjects(db) == [f"reconciliation:{LINK_INVENTORY}:{link_id}"]

    async with db.write() as conn:
        await conn.execute(
            update(payment_link).where(payment_link.c.id == link_id).values(inventory_sold=1)
        )
    clean = await run(audit_settings, db, start)
    assert clean["discrepancies"] == 0 and clean["alerts"]["resolved"] == 1
    assert await firing_subjects(db) == []
