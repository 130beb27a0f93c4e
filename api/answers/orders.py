"""The orders' answers (api/routes/orders.py): built from pool/orders/payloads.py, described
here."""

from __future__ import annotations

from typing import Any

from api.answers import Answer, Pagination
from pool.vocabulary import OrderStatus, Protocol


class OrderTransfer(Answer):
    depositId: str  # noqa: N815 - the wire name
    txHash: str  # noqa: N815
    logIndex: int | None  # noqa: N815 - null for a payment in the chain's coin
    amount: str
    confirmations: int
    status: str


class Order(Answer):
    orderId: str  # noqa: N815
    orderReference: str  # noqa: N815
    status: OrderStatus
    amount: str
    currency: str
    chainId: str  # noqa: N815
    protocol: Protocol
    address: str
    paymentAddress: str  # noqa: N815
    paymentUrl: str  # noqa: N815
    qrCode: str  # noqa: N815
    paymentWindowEndsAt: str  # noqa: N815
    gracePeriodEndsAt: str  # noqa: N815
    expiresAt: str  # noqa: N815
    confirmedReceived: str  # noqa: N815
    remainingAmount: str  # noqa: N815
    overpaidAmount: str  # noqa: N815
    requiredConfirmations: int  # noqa: N815
    txHash: str | None = None  # noqa: N815
    metadata: dict[str, Any] | None = None
    successUrl: str | None = None  # noqa: N815
    cancelUrl: str | None = None  # noqa: N815
    paymentLinkId: str | None = None  # noqa: N815 - set when a payment link's checkout made it
    createdAt: str  # noqa: N815
    completedAt: str | None = None  # noqa: N815
    expiredAt: str | None = None  # noqa: N815
    cancelledAt: str | None = None  # noqa: N815
    transfers: list[OrderTransfer]
    latePayments: list[OrderTransfer]  # noqa: N815
    otherPayments: list[OrderTransfer]  # noqa: N815


class OrderList(Answer):
    orders: list[Order]
    pagination: Pagination


class OrderCounts(Answer):
    totalOrders: int  # noqa: N815
    pendingOrders: int  # noqa: N815
    completedOrders: int  # noqa: N815
    expiredOrders: int  # noqa: N815
    cancelledOrders: int  # noqa: N815
    completedAmount: dict[str, str]  # noqa: N815
    receivedAmount: dict[str, str]  # noqa: N815


class OrderStats(OrderCounts):
    avgPaymentTimeSeconds: float | None = None  # noqa: N815
    byChain: dict[str, OrderCounts]  # noqa: N815
    byCurrency: dict[str, OrderCounts]  # noqa: N815
