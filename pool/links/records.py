"""A payment link as stored and as asked for (docs/api.md, Payment links)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pool.vocabulary import ARCHIVED, DRAFT, SOLD_OUT, LinkState, LinkStatus

OPEN_AMOUNT = "0"  # the payer enters the amount


@dataclass(frozen=True, slots=True)
class LinkCurrency:
    currency: str
    chain_id: str


@dataclass(frozen=True, slots=True)
class LinkRow:
    id: str
    slug: str
    title: str
    description: str | None
    amount: str
    currencies: list[dict[str, str]]  # [{"currency", "chainId"}], as stored
    status: LinkStatus
    inventory_total: int | None
    inventory_reserved: int
    inventory_sold: int
    expires_at: datetime | None
    metadata: dict[str, Any] | None
    success_url: str | None
    cancel_url: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    archived_at: datetime | None
    created_by: str

    @property
    def choices(self) -> list[LinkCurrency]:
        return [LinkCurrency(c["currency"], c["chainId"]) for c in self.currencies]

    @property
    def open_amount(self) -> bool:
        return self.amount == OPEN_AMOUNT

    @property
    def available(self) -> int | None:
        """Units left to reserve; None when the inventory is unlimited."""
        if self.inventory_total is None:
            return None
        return max(0, self.inventory_total - self.inventory_reserved - self.inventory_sold)

    @property
    def sold_out(self) -> bool:
        return self.available == 0

    def state(self, now: datetime) -> LinkState:
        """What a payer meets: the stored status, or why a published link takes no order."""
        if self.status in (DRAFT, ARCHIVED):
            return self.status
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.sold_out:
            return SOLD_OUT
        return self.status


@dataclass(frozen=True, slots=True)
class LinkAsk:
    """`POST /api/v1/payment-links` as the client sent it (shape already checked)."""

    title: str
    amount: str
    currencies: list[LinkCurrency]
    description: str | None = None
    inventory_total: int | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    success_url: str | None = None
    cancel_url: str | None = None


# What `PATCH /api/v1/payment-links/{id}` may change; a field left out is left as it is, and
# null clears the ones that may be empty.
PATCHABLE = ("title", "description", "metadata", "expires_at", "inventory_total")
