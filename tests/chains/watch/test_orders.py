"""Orders driven by the watcher's deposits, against a real anvil node and a real database
(SQLite and PostgreSQL): completion, expiry, late and mismatched payments, reorgs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from chains.presets import resolve_chain
from pool.kit.config import Settings
from pool.kit.config_sections import OrderSettings
from pool.kit.db import Database
from pool.kit.tables import address
from pool.orders.expiry import expire_batch
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil
from tests.chains.harness import CONFIRMATIONS, USDT, Harness, chain_settings
from tests.fixtures.devnet import FUNDS, Devnet
from tests.fixtures.order_rows import (
    add_order,
    chain_now,
    mine_past,
    order_events,
    order_shown,
    stamp_next_block,
)

ORDERS = OrderSettings()
SHORT = {"window": timedelta(seconds=30), "grace": timedelta(0)}  # grace ends 30 s in


async def expire(db: Database, now: datetime) -> int:
    async with db.write() as conn:
        return await expire_batch(conn, settings=ORDERS, now=now)


async def confirm(harness: Harness, blocks: int = CONFIRMATIONS - 1) -> None:
    """Mine the blocks that give the latest one its confirmations, and let the watcher see."""
    harness.mine(blocks)
    await harness.poll()


async def started(harness: Harness) -> datetime:
    """The watcher has its cursor; the chain's clock now, which the next blocks follow (the
    shared node's own clock may have been set back by another test's reorg)."""
    await harness.poll()
    start = chain_now(harness.devnet.url)
    stamp_next_block(harness.devnet.url, start + timedelta(seconds=1))
    return start


def kinds(events: list[tuple[str, dict]]) -> list[str]:
    return [kind for kind, _ in events]


async def test_an_exact_payment_completes_the_order_once(harness: Harness) -> None:
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    tx = harness.send(to, 5 * USDT)
    await harness.poll()
    shown = await order_shown(harness.db, order_id)
    assert shown["status"] == "pending"
    assert [(t["txHash"], t["status"], t["confirmations"]) for t in shown["transfers"]] == [
        (tx, "pending", 1)
    ]
    assert shown["confirmedReceived"] == "0"

    await confirm(harness)
    await harness.poll()  # nothing new: no second completion
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["txHash"]) == ("completed", tx)
    assert (shown["confirmedReceived"], shown["remainingAmount"]) == ("5", "0")
    assert shown["overpaidAmount"] == "0"
    assert shown["completedAt"] is not None
    events = await order_events(harness.db)
    assert kinds(events) == ["order.completed"]
    assert events[0][1]["orderId"] == order_id
    assert events[0][1]["txHash"] == tx
    # The order's, not a binding's: no deposit event, no unattributed alert.
    [row] = await harness.deposits()
    assert (row["binding_id"], row["order_id"], row["order_role"]) == (None, order_id, "payment")
    assert row["block_time"] is not None
    assert await harness.events() == []
    assert await harness.alerts() == []
    async with harness.db.read() as conn:
        status, cooldown = (
            await conn.execute(
                select(address.c.status, address.c.cooldown_until).where(address.c.address == to)
            )
        ).one()
    assert status == "available" and cooldown is not None


async def test_two_partial_payments_complete_on_the_second_confirmation(
    harness: Harness,
) -> None:
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    harness.send(to, 2 * USDT)
    await confirm(harness)
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["confirmedReceived"], shown["remainingAmount"]) == (
        "pending",
        "2",
        "3",
    )
    second = harness.send(to, 3 * USDT)
    await harness.poll()
    assert (await order_shown(harness.db, order_id))["status"] == "pending"  # still confirming
    await confirm(harness)
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["txHash"], shown["confirmedReceived"]) == (
        "completed",
        second,
        "5",
    )
    assert kinds(await order_events(harness.db)) == ["order.completed"]


async def test_an_overpayment_completes_with_what_was_overpaid(harness: Harness) -> None:
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    harness.send(to, 7_500_000)
    await confirm(harness)
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["confirmedReceived"], shown["overpaidAmount"]) == (
        "completed",
        "7.5",
        "2.5",
    )
    assert shown["remainingAmount"] == "0"


async def test_an_underpaid_order_expires_once_the_watcher_is_past_its_grace_end(
    harness: Harness,
) -> None:
    url = harness.devnet.url
    start = await started(harness)
    order_id, to = await add_order(
        harness.db, harness.chain, amount=5 * USDT, created_at=start, **SHORT
    )
    grace_end = start + SHORT["window"]
    stamp_next_block(url, start + timedelta(seconds=5))
    harness.send(to, 2 * USDT)
    await confirm(harness)
    # The grace has ended by our clock, but the watcher has seen no block past it: a payment
    # mined in time may not be recorded yet.
    assert await expire(harness.db, grace_end + timedelta(seconds=60)) == 0
    mine_past(url, grace_end)
    await harness.poll()
    assert await expire(harness.db, grace_end - timedelta(seconds=1)) == 0  # not yet due
    assert await expire(harness.db, grace_end + timedelta(seconds=1)) == 1
    assert await expire(harness.db, grace_end + timedelta(seconds=2)) == 0  # once
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["confirmedReceived"], shown["remainingAmount"]) == (
        "expired",
        "2",
        "3",
    )
    events = await order_events(harness.db)
    assert kinds(events) == ["order.expired"]
    assert events[0][1]["confirmedReceived"] == "2"

    # A payment after expiry is the order's late payment, announced once confirmed.
    late = harness.send(to, 3 * USDT)
    await harness.poll()
    assert kinds(await order_events(harness.db)) == ["order.expired"]
    await confirm(harness)
    await harness.poll()
    events = await order_events(harness.db)
    assert kinds(events) == ["order.expired", "order.paid_late"]
    data = events[1][1]
    assert (data["status"], data["transfer"]["txHash"], data["transfer"]["status"]) == (
        "expired",
        late,
        "confirmed",
    )
    assert [t["txHash"] for t in data["latePayments"]] == [late]
    assert data["confirmedReceived"] == "2"  # a late payment never counts


async def test_a_payment_mined_before_the_grace_end_holds_the_order_until_it_confirms(
    harness: Harness,
) -> None:
    url = harness.devnet.url
    start = await started(harness)
    order_id, to = await add_order(
        harness.db, harness.chain, amount=5 * USDT, created_at=start, **SHORT
    )
    grace_end = start + SHORT["window"]
    stamp_next_block(url, grace_end - timedelta(seconds=1))
    tx = harness.send(to, 5 * USDT)
    mine_past(url, grace_end)  # 2 confirmations, the second block after the grace end
    await harness.poll()
    [row] = await harness.deposits()
    assert (row["order_role"], row["status"]) == ("payment", "pending")
    assert await expire(harness.db, grace_end + timedelta(seconds=30)) == 0
    await confirm(harness, 1)
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["txHash"]) == ("completed", tx)
    assert await expire(harness.db, grace_end + timedelta(seconds=31)) == 0
    assert kinds(await order_events(harness.db)) == ["order.completed"]


async def test_another_token_is_a_mismatch_and_never_completes(harness: Harness) -> None:
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    usdc = harness.send(to, 5 * USDT, token=harness.devnet.usdc)
    await harness.poll()
    assert await order_events(harness.db) == []  # announced once confirmed, as deposits are
    await confirm(harness)
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["confirmedReceived"], shown["transfers"]) == ("pending", "0", [])
    assert [(t["txHash"], t["currency"]) for t in shown["otherPayments"]] == [(usdc, "USDC")]
    events = await order_events(harness.db)
    assert kinds(events) == ["order.payment_mismatch"]
    assert events[0][1]["transfer"]["currency"] == "USDC"
    assert await harness.alerts() == []


@pytest.fixture
async def chain_b(db: Database, harness: Harness) -> AsyncIterator[Harness]:
    """A second chain (its own anvil node) watching the same pool, its USDT at the same
    contract address as the first chain's (the same deployer and nonce)."""
    with Anvil() as node:
        url = node.url
        usdt = anvil.deploy_token(url, name="Tether USD", symbol="USDT", decimals=6)
        usdc = anvil.deploy_token(url, name="USD Coin", symbol="USDC", decimals=6)
        sender = anvil.accounts(url)[0]
        anvil.mint(url, usdt, sender, FUNDS)
        devnet = Devnet(url, usdt, usdc, sender)
        settings = Settings(network="testnet", chains={"devnet-b": chain_settings(devnet)})
        running = Harness(db, devnet, harness.pool, resolve_chain("devnet-b", settings))
        yield running
        await running.client.close()


async def test_the_right_token_on_another_chain_is_a_mismatch(
    harness: Harness, chain_b: Harness
) -> None:
    assert chain_b.devnet.usdt.lower() == harness.devnet.usdt.lower()
    await chain_b.poll()
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    stamp_next_block(
        chain_b.devnet.url, max(start, chain_now(chain_b.devnet.url)) + timedelta(seconds=1)
    )
    other = chain_b.send(to, 5 * USDT)
    await confirm(chain_b)
    shown = await order_shown(harness.db, order_id)
    assert shown["status"] == "pending"
    assert [(t["txHash"], t["chainId"]) for t in shown["otherPayments"]] == [(other, "devnet-b")]
    assert kinds(await order_events(harness.db)) == ["order.payment_mismatch"]


async def test_a_reorged_pending_payment_is_not_counted(harness: Harness) -> None:
    url = harness.devnet.url
    start = await started(harness)
    order_id, to = await add_order(
        harness.db, harness.chain, amount=5 * USDT, created_at=start, **SHORT
    )
    stamp_next_block(url, start + timedelta(seconds=2))
    harness.send(to, 5 * USDT)
    await harness.poll()
    anvil.reorg(url, 1)  # the payment's block is replaced by an empty one
    await harness.poll()
    [row] = await harness.deposits()
    assert row["status"] == "reverted"
    grace_end = start + SHORT["window"]
    mine_past(url, grace_end, CONFIRMATIONS)
    await harness.poll()
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["confirmedReceived"]) == ("pending", "0")
    assert await expire(harness.db, grace_end + timedelta(seconds=1)) == 1
    assert kinds(await order_events(harness.db)) == ["order.expired"]


async def test_a_reorg_after_completion_is_announced_and_alerted(harness: Harness) -> None:
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    tx = harness.send(to, 5 * USDT)
    await confirm(harness)
    assert (await order_shown(harness.db, order_id))["status"] == "completed"
    anvil.reorg(harness.devnet.url, CONFIRMATIONS)  # the payment's block and the two above it
    await harness.poll()
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["confirmedReceived"]) == ("completed", "0")  # terminal once
    events = await order_events(harness.db)
    assert kinds(events) == ["order.completed", "order.reverted"]
    assert events[1][1]["transfer"]["txHash"] == tx
    assert events[1][1]["transfer"]["status"] == "reverted"
    alerts = {a["kind"]: a for a in await harness.alerts()}
    assert alerts["order_payment_reverted"]["severity"] == "critical"
    assert alerts["order_payment_reverted"]["subject"] == f"order_payment_reverted:{order_id}"
    await harness.poll()
    assert kinds(await order_events(harness.db)) == ["order.completed", "order.reverted"]


async def test_two_payments_reverted_by_one_reorg_are_both_named(harness: Harness) -> None:
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    first = harness.send(to, 2 * USDT)
    second = harness.send(to, 3 * USDT)  # the block after the first's
    await confirm(harness)
    assert (await order_shown(harness.db, order_id))["status"] == "completed"
    anvil.reorg(harness.devnet.url, CONFIRMATIONS + 1)  # both payments' blocks, and above
    await harness.poll()
    events = await order_events(harness.db)
    assert kinds(events) == ["order.completed", "order.reverted"]
    reverted = events[1][1]["revertedTransfers"]
    assert sorted(t["txHash"] for t in reverted) == sorted([first, second])
    assert {t["status"] for t in reverted} == {"reverted"}
    assert events[1][1]["transfer"] == reverted[0]
    alerts = {a["kind"]: a for a in await harness.alerts()}
    assert len(alerts["order_payment_reverted"]["details"]["revertedDepositIds"]) == 2


async def test_the_latest_use_of_an_address_wins_over_an_earlier_binding(
    harness: Harness,
) -> None:
    start = await started(harness)
    cooling = await harness.bind("earlier-user")
    await harness.unbind("earlier-user")  # cooling down: today its deposits are still his
    order_id, to = await add_order(
        harness.db, harness.chain, amount=5 * USDT, created_at=start, address_text=cooling
    )
    assert to == cooling
    harness.send(to, 5 * USDT)
    await confirm(harness)
    [row] = await harness.deposits()
    assert (row["binding_id"], row["order_id"], row["late"]) == (None, order_id, False)
    assert await harness.events() == []  # nothing for the earlier reference
    assert (await order_shown(harness.db, order_id))["status"] == "completed"


async def test_a_reverted_payment_included_again_makes_the_order_whole(harness: Harness) -> None:
    start = await started(harness)
    order_id, to = await add_order(harness.db, harness.chain, amount=5 * USDT, created_at=start)
    tx = harness.send(to, 5 * USDT)
    await confirm(harness)
    # The payment's block and the two above are replaced; the payment comes back one block later
    # (at its own height, anvil could rebuild the very same block: no reorg at all).
    anvil.reorg(harness.devnet.url, CONFIRMATIONS, [(tx, 1)])
    await harness.poll_to_head()
    [row] = await harness.deposits()
    assert (row["status"], row["order_role"]) == ("pending", "payment")
    assert kinds(await order_events(harness.db)) == ["order.completed", "order.reverted"]
    assert (await order_shown(harness.db, order_id))["confirmedReceived"] == "0"
    await confirm(harness, 1)
    [row] = await harness.deposits()
    assert (row["status"], row["order_role"]) == ("confirmed", "payment")
    shown = await order_shown(harness.db, order_id)
    assert (shown["status"], shown["confirmedReceived"], shown["txHash"]) == ("completed", "5", tx)
    assert kinds(await order_events(harness.db)) == ["order.completed", "order.reverted"]
    alerts = {a["kind"]: a for a in await harness.alerts()}
    assert alerts["order_payment_reverted"]["state"] == "resolved"
