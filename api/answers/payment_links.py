"""Payment links' answers (api/routes/payment_links.py): built from pool/links/payloads.py,
described here."""

from __future__ import annotations

from typing import Any

from api.answers import Answer, Pagination
from pool.vocabulary import LinkState, LinkStatus


class LinkCurrency(Answer):
    currency: str
    chainId: str  # noqa: N815 - the wire name


class PaymentLink(Answer):
    id: str
    slug: str
    title: str
    description: str | None = None
    amount: str
    currencies: list[LinkCurrency]
    status: LinkStatus
    state: LinkState
    checkoutUrl: str  # noqa: N815
    inventoryTotal: int | None = None  # noqa: N815
    inventoryReserved: int  # noqa: N815
    inventorySold: int  # noqa: N815
    inventoryAvailable: int | None = None  # noqa: N815
    expiresAt: str | None = None  # noqa: N815
    metadata: dict[str, Any] | None = None
    successUrl: str | None = None  # noqa: N815
    cancelUrl: str | None = None  # noqa: N815
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    publishedAt: str | None = None  # noqa: N815
    archivedAt: str | None = None  # noqa: N815


class PaymentLinkList(Answer):
    paymentLinks: list[PaymentLink]  # noqa: N815
    pagination: Pagination
