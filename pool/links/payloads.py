"""docs/api.md's payment link object: what `GET /api/v1/payment-links/...` shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pool.kit.clock import isoformat_z, isoformat_z_or_none
from pool.links.records import LinkRow

CHECKOUT_PATH = "/checkout/"


def checkout_url(base_url: str, slug: str) -> str:
    return f"{base_url.rstrip('/')}{CHECKOUT_PATH}{slug}"


def link_payload(link: LinkRow, *, base_url: str, now: datetime) -> dict[str, Any]:
    return {
        "id": link.id,
        "slug": link.slug,
        "title": link.title,
        "description": link.description,
        "amount": link.amount,
        "currencies": link.currencies,
        "status": link.status,
        # What a payer meets now: the status, or `expired` / `sold_out` for a published link.
        "state": link.state(now),
        "checkoutUrl": checkout_url(base_url, link.slug),
        "inventoryTotal": link.inventory_total,
        "inventoryReserved": link.inventory_reserved,
        "inventorySold": link.inventory_sold,
        "inventoryAvailable": link.available,
        "expiresAt": isoformat_z_or_none(link.expires_at),
        "metadata": link.metadata,
        "successUrl": link.success_url,
        "cancelUrl": link.cancel_url,
        "createdAt": isoformat_z(link.created_at),
        "updatedAt": isoformat_z(link.updated_at),
        "publishedAt": isoformat_z_or_none(link.published_at),
        "archivedAt": isoformat_z_or_none(link.archived_at),
    }
