"""A payment link's public checkout: the payer's choice becomes an order of the link (docs/api.md,
Payment links; docs/design.md, Payment links).

The order and its unit of the link's inventory are taken in one transaction: the conditional
reservation (pool.orders.link_inventory_repository) first — on PostgreSQL it locks the link's row,
so concurrent checkouts of one link go one at a time through this short transaction and exactly
the units there are get sold — then the order's own creation, the same statements as the API's.
No free address rolls the reservation back with it. The cap of pending orders per link is
checked by the same reservation: a script hammering a link's checkout holds at most that many
of the pool's addresses.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.clock import utc_now
from pool.kit.config import OrderSettings
from pool.kit.db import Database
from pool.kit.errors import InsufficientAddresses, ValidationFailed
from pool.links import repository as repo
from pool.links.records import LinkRow
from pool.orders import link_inventory_repository as link_inventory
from pool.orders.intake import resolve
from pool.orders.records import OrderAsk, OrderChain
from pool.orders.service import insert_new_order, new_order
from pool.vocabulary import PUBLISHED

CHECKOUT_ACTOR = "checkout"
# A payer refused because the pool is dry is asked to come back after this long.
POOL_DRY_RETRY_SECONDS = 60


class LinkClosed(Exception):
    """The link takes no order now: `reason` is `not_found`, `draft`, `archived`, `expired`,
    `sold_out`, or `busy` (its cap of pending orders reached; `retry_after` seconds)."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


async def open_link(conn: AsyncConnection, slug: str, now: datetime) -> LinkRow:
    """The published link behind `slug` that takes orders now; LinkClosed otherwise."""
    link = await repo.link_by_slug(conn, slug)
    if link is None:
        raise LinkClosed("not_found")
    state = link.state(now)
    if state != PUBLISHED:
        raise LinkClosed(state)
    return link


async def checkout(
    db: Database,
    *,
    slug: str,
    choice: int,
    amount: str | None,
    chains: Mapping[str, OrderChain],
    settings: OrderSettings,
    pending_cap: int,
    allow_http: bool,
    base_url: str,
) -> dict[str, Any]:
    """The new order's object. LinkClosed, ValidationFailed (a choice or an amount the link does
    not take) or InsufficientAddresses otherwise, with nothing written."""
    now = utc_now()
    async with db.read() as conn:
        link = await open_link(conn, slug, now)
    ask = _order_ask(link, choice, amount)
    resolved = resolve(ask, chains=chains, settings=settings, allow_http=allow_http)
    new = new_order(
        resolved, base_url=base_url, actor=CHECKOUT_ACTOR, now=now, payment_link_id=link.id
    )

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        if not await link_inventory.reserve(
            conn, link_id=link.id, now=now, pending_cap=pending_cap
        ):
            raise await _why_refused(conn, link.id, now=now)
        order = await insert_new_order(conn, new)
        if order is None:  # no free address: the reservation goes back with the transaction
            raise InsufficientAddresses(new.protocol)
        return order

    return await db.run_write(work)


def _order_ask(link: LinkRow, choice: int, amount: str | None) -> OrderAsk:
    choices = link.choices
    if not 0 <= choice < len(choices):
        message = f"must be one of the link's {len(choices)} currencies"
        raise ValidationFailed(
            f"choice {message}", details=[{"field": "choice", "message": message}]
        )
    if link.open_amount:
        if not amount:
            message = "is required: this link lets the payer enter it"
            raise ValidationFailed(
                f"amount {message}",
                code="INVALID_AMOUNT",
                details=[{"field": "amount", "message": message}],
            )
    else:
        amount = link.amount
    picked = choices[choice]
    return OrderAsk(
        # Unique per order (the reference's unique index), and says which link made it.
        reference=f"{link.id}:{secrets.token_hex(8)}",
        amount=amount,
        currency=picked.currency,
        chain_id=picked.chain_id,
        metadata=link.metadata,
        success_url=link.success_url,
        cancel_url=link.cancel_url,
    )


async def _why_refused(conn: AsyncConnection, link_id: str, *, now: datetime) -> LinkClosed:
    """The reservation was refused: the link closed meanwhile, or (published, not sold out)
    its pending orders are at the cap: the payer may try when the first of them ends."""
    link = await repo.link_by_id(conn, link_id)
    if link is None:  # pragma: no cover - links are never deleted
        return LinkClosed("not_found")
    state = link.state(now)
    if state != PUBLISHED:
        return LinkClosed(state)
    first_end = await repo.earliest_pending_end(conn, link_id)
    wait = 1 if first_end is None else math.ceil((first_end - now).total_seconds())
    return LinkClosed("busy", retry_after=max(1, wait))
