"""docs/api.md's order object: what `GET /orders/...` shows and what `order.*` events carry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.amounts import format_units
from pool.kit.clock import isoformat_z, isoformat_z_or_none
from pool.orders.repository import (
    OrderRow,
    OrderTransfer,
    OrderUse,
    orders_by_ids,
    transfers_of,
)
from pool.vocabulary import (
    CREDITED,
    LATE_PAYMENT,
    MISMATCHED_PAYMENT,
    ON_CHAIN,
    PAYMENT,
)


def confirmed_received(order: OrderRow, transfers: Sequence[OrderTransfer]) -> int:
    """Base units of the order's counted payments that reached their confirmations."""
    return sum(t.amount for t in transfers if t.role == PAYMENT and t.status in CREDITED)


def transfer_payload(transfer: OrderTransfer) -> dict[str, Any]:
    head = transfer.chain_head
    on_chain = transfer.status in ON_CHAIN
    depth = max(0, head - transfer.block_number + 1) if head is not None and on_chain else 0
    return {
        "depositId": transfer.deposit_id,
        "chainId": transfer.chain_id,
        "currency": transfer.currency,
        "txHash": transfer.tx_hash,
        # A payment in the chain's coin has no log (its deposit's trace position places it).
        "logIndex": None if transfer.log_index < 0 else transfer.log_index,
        "blockNumber": transfer.block_number,
        "blockTime": isoformat_z_or_none(transfer.block_time),
        "amount": format_units(transfer.amount, transfer.decimals),
        "confirmations": depth,
        "status": transfer.status,
    }


def order_payload(order: OrderRow, transfers: Sequence[OrderTransfer]) -> dict[str, Any]:
    received = confirmed_received(order, transfers)
    completing = next((t for t in transfers if t.deposit_id == order.completed_by), None)
    return {
        "orderId": order.id,
        "orderReference": order.order_reference,
        "status": order.status,
        "amount": format_units(order.amount, order.decimals),
        "currency": order.currency,
        "chainId": order.chain_id,
        "protocol": order.protocol,
        "address": order.address,
        "paymentAddress": order.address,
        "paymentUrl": order.payment_url,
        "qrCode": f"{order.payment_url}/qr.svg",
        "paymentWindowEndsAt": isoformat_z(order.window_ends_at),
        "gracePeriodEndsAt": isoformat_z(order.grace_ends_at),
        "expiresAt": isoformat_z(order.grace_ends_at),
        "confirmedReceived": format_units(received, order.decimals),
        "remainingAmount": format_units(max(0, order.amount - received), order.decimals),
        "overpaidAmount": format_units(max(0, received - order.amount), order.decimals),
        "requiredConfirmations": order.required_confirmations,
        "txHash": None if completing is None else completing.tx_hash,
        "metadata": order.metadata,
        "successUrl": order.success_url,
        "cancelUrl": order.cancel_url,
        "paymentLinkId": order.payment_link_id,
        "createdAt": isoformat_z(order.created_at),
        "completedAt": isoformat_z_or_none(order.completed_at),
        "expiredAt": isoformat_z_or_none(order.expired_at),
        "cancelledAt": isoformat_z_or_none(order.cancelled_at),
        "transfers": [transfer_payload(t) for t in transfers if t.role == PAYMENT],
        "latePayments": [transfer_payload(t) for t in transfers if t.role == LATE_PAYMENT],
        "otherPayments": [transfer_payload(t) for t in transfers if t.role == MISMATCHED_PAYMENT],
    }


def with_address(payload: dict[str, Any], address: str) -> dict[str, Any]:
    """A new order's object, built before its address was claimed, with the address in (the
    same keys in the same order: the event's text is the same as if built after)."""
    return {**payload, "address": address, "paymentAddress": address}


async def order_payloads(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """order id → its object as it stands in this transaction (unknown ids are left out)."""
    orders = await orders_by_ids(conn, ids)
    transfers = await transfers_of(conn, list(orders))
    return {
        order_id: order_payload(order, transfers[order_id]) for order_id, order in orders.items()
    }


def payment_moment_fits(order: OrderRow | OrderUse, block_time: datetime) -> bool:
    """Invariant 14's clock: a transfer counts when its block's timestamp is no earlier than the
    order's creation second and no later than the grace end (block time, not detection time)."""
    created_second = order.created_at.replace(microsecond=0)
    return created_second <= block_time <= order.grace_ends_at
