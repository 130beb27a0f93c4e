"""What the payer of an order may see: the public payment page and its status poll.

Only what a payer needs to pay and to know it worked: amounts, token, chain, address, progress,
times, and where to go next. Never the order's metadata, never a deposit's reference; the
order's own reference only where the payer is told to quote it to the merchant (the page, not
the status poll).

Progress, in the order a payer lives it: `waiting` (nothing seen), `confirming` (a payment is in
a block, its confirmations rising), `partial` (confirmed, but less than the amount), `paid`,
`expired`, `cancelled`. What the payer has sent counts payments still confirming too: "send 60
more" must not ask again for money already on its way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.amounts import format_units
from pool.kit.clock import isoformat_z
from pool.orders.payloads import confirmed_received
from pool.orders.repository import OrderRow, OrderTransfer, order_with_transfers
from pool.vocabulary import (
    CANCELLED,
    COMPLETED,
    CREDITED,
    EXPIRED,
    LATE_PAYMENT,
    MISMATCHED_PAYMENT,
    ON_CHAIN,
    PAYMENT,
)

Progress = Literal["waiting", "confirming", "partial", "paid", "expired", "cancelled"]
_ENDED: dict[str, Progress] = {COMPLETED: "paid", EXPIRED: "expired", CANCELLED: "cancelled"}


@dataclass(frozen=True, slots=True)
class OtherPayment:
    """A transfer to the address in another token or on another chain than the order's."""

    amount: str
    currency: str
    chain_id: str


@dataclass(frozen=True, slots=True)
class PayerView:
    order_id: str
    order_reference: str  # for the page's "quote it to the merchant"; not in the status poll
    status: str
    progress: Progress
    amount: str
    currency: str
    chain_id: str
    address: str
    received: str  # confirmed and confirming
    confirmed: str
    remaining: str
    confirmations: int  # of the least-confirmed payment still confirming; 0 when none
    required_confirmations: int
    window_ends_at: datetime
    expires_at: datetime
    other_payments: tuple[OtherPayment, ...]
    paid_late: bool
    redirect_url: str | None

    @property
    def ended(self) -> bool:
        return self.progress in _ENDED.values()

    def status_payload(self, now: datetime) -> dict[str, Any]:
        """`GET /pay/order/{orderId}/status` (docs/api.md, Public pages)."""
        return {
            "orderId": self.order_id,
            "status": self.status,
            "paymentProgress": self.progress,
            "amount": self.amount,
            "currency": self.currency,
            "chainId": self.chain_id,
            "address": self.address,
            "receivedAmount": self.received,
            "confirmedAmount": self.confirmed,
            "remainingAmount": self.remaining,
            "currentConfirmations": self.confirmations,
            "requiredConfirmations": self.required_confirmations,
            "paymentWindowEndsAt": isoformat_z(self.window_ends_at),
            "expiresAt": isoformat_z(self.expires_at),
            "otherPayments": [
                {"amount": p.amount, "currency": p.currency, "chainId": p.chain_id}
                for p in self.other_payments
            ],
            "paidLate": self.paid_late,
            "redirectUrl": self.redirect_url,
            "serverTime": isoformat_z(now),
        }


def payer_view(order: OrderRow, transfers: Sequence[OrderTransfer]) -> PayerView:
    payments = [t for t in transfers if t.role == PAYMENT and t.status in ON_CHAIN]
    confirming = [t for t in payments if t.status not in CREDITED]
    confirmed = confirmed_received(order, transfers)
    received = confirmed + sum(t.amount for t in confirming)
    return PayerView(
        order_id=order.id,
        order_reference=order.order_reference,
        status=order.status,
        progress=_progress(order, confirmed, confirming),
        amount=format_units(order.amount, order.decimals),
        currency=order.currency,
        chain_id=order.chain_id,
        address=order.address,
        received=format_units(received, order.decimals),
        confirmed=format_units(confirmed, order.decimals),
        remaining=format_units(max(0, order.amount - received), order.decimals),
        confirmations=min((_depth(t) for t in confirming), default=0),
        required_confirmations=order.required_confirmations,
        window_ends_at=order.window_ends_at,
        expires_at=order.grace_ends_at,
        other_payments=tuple(
            OtherPayment(format_units(t.amount, t.decimals), t.currency, t.chain_id)
            for t in transfers
            if t.role == MISMATCHED_PAYMENT and t.status in ON_CHAIN
        ),
        paid_late=any(t.role == LATE_PAYMENT and t.status in ON_CHAIN for t in transfers),
        redirect_url=_redirect_url(order, transfers),
    )


async def payer_view_of(conn: AsyncConnection, order_id: str) -> PayerView | None:
    found = await order_with_transfers(conn, order_id)
    return None if found is None else payer_view(*found)


def _progress(order: OrderRow, confirmed: int, confirming: Sequence[OrderTransfer]) -> Progress:
    if order.status in _ENDED:
        return _ENDED[order.status]
    if confirming:
        return "confirming"
    return "partial" if confirmed else "waiting"


def _depth(transfer: OrderTransfer) -> int:
    head = transfer.chain_head
    return 0 if head is None else max(0, head - transfer.block_number + 1)


def _redirect_url(order: OrderRow, transfers: Sequence[OrderTransfer]) -> str | None:
    """Where the page sends the payer once the order has ended: the merchant's success URL
    with the order's outcome appended (its query kept), or its cancel URL."""
    if order.status == COMPLETED and order.success_url:
        completing = next((t for t in transfers if t.deposit_id == order.completed_by), None)
        tx_hash = completing.tx_hash if completing is not None else ""
        return _with_query(order.success_url, order, txHash=tx_hash)
    if order.status in (EXPIRED, CANCELLED) and order.cancel_url:
        return _with_query(order.cancel_url, order)
    return None


def _with_query(url: str, order: OrderRow, **more: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [
        ("orderId", order.id),
        ("orderReference", order.order_reference),
        ("status", order.status),
        *more.items(),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))
