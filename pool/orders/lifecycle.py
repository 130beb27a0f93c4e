"""What the watcher's ledger changes do to orders, inside the watcher's transaction
(docs/design.md, Orders): completion, `order.paid_late` / `order.payment_mismatch`, and a
completed order's payment leaving the canonical chain (`order.reverted`).

No polling: the watcher calls these with the deposits it has just confirmed or reverted, so an
order completes in the same transaction as the confirmation that reached its amount.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts.repository import fire_alert, resolve_alert
from pool.orders import repository as repo
from pool.orders.ending import end_order
from pool.orders.linking import OrderLink, owner_of
from pool.orders.payloads import confirmed_received, order_payload, transfer_payload
from pool.orders.repository import OrderRow, OrderTransfer
from pool.vocabulary import (
    COMPLETED,
    CREDITED,
    LATE_PAYMENT,
    MISMATCHED_PAYMENT,
    ORDER_PAID_LATE,
    ORDER_PAYMENT_MISMATCH,
    ORDER_PAYMENT_REVERTED,
    ORDER_REVERTED,
    PAYMENT,
    PENDING,
)
from pool.webhooks.events_repository import insert_events
from pool.webhooks.outbox import new_event_id

NOTICE_OF_ROLE = {LATE_PAYMENT: ORDER_PAID_LATE, MISMATCHED_PAYMENT: ORDER_PAYMENT_MISMATCH}


def completing_transfer(
    order: OrderRow, transfers: Sequence[OrderTransfer]
) -> OrderTransfer | None:
    """The confirmed payment whose confirmation brought the sum to the amount, in chain
    order; None while the confirmed payments fall short."""
    total = 0
    for transfer in transfers:
        if transfer.role == PAYMENT and transfer.status in CREDITED:
            total += transfer.amount
            if total >= order.amount:
                return transfer
    return None


async def after_confirmation(
    conn: AsyncConnection, *, deposit_ids: Collection[str], now: datetime, cooldown: timedelta
) -> int:
    """These deposits just reached their confirmations: complete the orders they paid, and
    announce the late and mismatched ones. Returns the events written."""
    links = await repo.order_links(conn, sorted(deposit_ids))
    if not links:
        return 0
    paid = sorted({order_id for order_id, role in links.values() if role == PAYMENT})
    orders = await repo.orders_by_ids(conn, paid)
    transfers = await repo.transfers_of(conn, paid)
    events = 0
    for order_id in paid:
        order = orders[order_id]
        completing = completing_transfer(order, transfers[order_id])
        if order.status == COMPLETED and completing is not None:
            # A reverted payment re-included and confirmed again: the order is whole again.
            subject = f"{ORDER_PAYMENT_REVERTED}:{order_id}"
            await resolve_alert(conn, subject=subject, now=now)
        if order.status != PENDING or completing is None:
            continue
        # Overpayment completes too: what exceeds the amount shows as overpaidAmount.
        ended = await end_order(
            conn,
            order_id=order_id,
            address_id=order.address_id,
            status=COMPLETED,
            now=now,
            cooldown=cooldown,
            completed_by=completing.deposit_id,
        )
        events += int(ended)
    noticed = {d: link for d, link in links.items() if link[1] in NOTICE_OF_ROLE}
    if noticed:
        events += await _notices(conn, noticed, now)
    return events


async def _notices(
    conn: AsyncConnection, noticed: Mapping[str, tuple[str, str]], now: datetime
) -> int:
    """One `order.paid_late` / `order.payment_mismatch` per transfer: the order as it now
    stands, and the transfer."""
    order_ids = sorted({order_id for order_id, _ in noticed.values()})
    orders = await repo.orders_by_ids(conn, order_ids)
    transfers = await repo.transfers_of(conn, order_ids)
    events = []
    for order_id in order_ids:
        shown = order_payload(orders[order_id], transfers[order_id])
        for transfer in transfers[order_id]:
            link = noticed.get(transfer.deposit_id)
            if link is not None:
                data = {**shown, "transfer": transfer_payload(transfer)}
                events.append((new_event_id(), NOTICE_OF_ROLE[link[1]], data))
    await insert_events(conn, events=events, now=now)
    return len(events)


async def after_revert(
    conn: AsyncConnection, *, credited_ids: Collection[str], now: datetime
) -> int:
    """These deposits, confirmed until now, left the canonical chain (already marked
    reverted). A pending order simply counts less; a completed order whose confirmed sum
    falls below its amount stays completed (terminal once) but is announced `order.reverted`,
    with a critical alert for an operator to look at. Returns the events written."""
    links = await repo.order_links(conn, sorted(credited_ids))
    lost = {d: order_id for d, (order_id, role) in links.items() if role == PAYMENT}
    if not lost:
        return 0
    order_ids = sorted(set(lost.values()))
    orders = await repo.orders_by_ids(conn, order_ids)
    transfers = await repo.transfers_of(conn, order_ids)
    events = []
    for order_id in order_ids:
        order, its = orders[order_id], transfers[order_id]
        gone = [t for t in its if t.deposit_id in lost]
        now_received = confirmed_received(order, its)
        before = now_received + sum(t.amount for t in gone)
        # Announced once per fall below the amount, not for every later loss.
        if order.status != COMPLETED or not before >= order.amount > now_received:
            continue
        shown = order_payload(order, its)
        # `transfer` as the other transfer events have it; a reorg can take several at once.
        reverted = [transfer_payload(t) for t in gone]
        data = {**shown, "transfer": reverted[0], "revertedTransfers": reverted}
        events.append((new_event_id(), ORDER_REVERTED, data))
        await _alert_reverted(conn, order, gone, now_received, now)
    await insert_events(conn, events=events, now=now)
    return len(events)


async def _alert_reverted(
    conn: AsyncConnection,
    order: OrderRow,
    gone: Sequence[OrderTransfer],
    received: int,
    now: datetime,
) -> None:
    transfer = gone[0]
    details: dict[str, Any] = {
        "orderId": order.id,
        "orderReference": order.order_reference,
        "chainId": transfer.chain_id,
        "depositId": transfer.deposit_id,
        "txHash": transfer.tx_hash,
        "blockNumber": transfer.block_number,
        "revertedDepositIds": [t.deposit_id for t in gone],
        "amount": str(order.amount),
        "confirmedReceived": str(received),
    }
    await fire_alert(
        conn,
        kind=ORDER_PAYMENT_REVERTED,
        subject=f"{ORDER_PAYMENT_REVERTED}:{order.id}",
        severity="critical",
        value=str(received),
        details=details,
        now=now,
    )


async def relink(conn: AsyncConnection, *, deposit_ids: Collection[str]) -> None:
    """Reverted deposits seen again in another block (a reorg re-included them): their role
    follows their new block time against the order's time (creation second to grace end)."""
    for deposit_id, (order_id, chain_id, token, block_time) in (
        await repo.relink_candidates(conn, sorted(deposit_ids))
    ).items():
        use = await repo.order_use(conn, order_id)
        if use is None or block_time is None:
            continue
        # Judged against the order's time alone: a payment that completed the order and comes
        # back in a later block is not "after the order ended" (it is why the order ended).
        during = dataclasses.replace(use, ended_at=None)
        owner = owner_of(
            during, bound_at=None, chain_id=chain_id, token_contract=token, block_time=block_time
        )
        if isinstance(owner, OrderLink):
            await repo.set_role(conn, deposit_id=deposit_id, role=owner.role)
