"""Payment links: create (a draft), read, list, change, publish, archive (docs/api.md, Payment
links). Each write owns its transaction and leaves an audit record of who did it.

A link's lifecycle: `draft` (not public) → `published` (its checkout takes orders) → `archived`
(for good; its pending orders run their course). Its checkout is `pool.links.checkout`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import Conflict, NotFound
from pool.links import repository as repo
from pool.links.intake import check_currencies, check_expiry, check_inventory, check_link
from pool.links.records import LinkAsk, LinkRow
from pool.orders.records import OrderChain
from pool.vocabulary import ARCHIVED, DRAFT, PUBLISHED
from pool.webhooks.events_repository import insert_audit

LINK_ID_PREFIX = "pl_"


def new_link_id() -> str:
    return LINK_ID_PREFIX + secrets.token_hex(16)


def new_slug() -> str:
    """72 random bits in 12 URL-safe characters: a shared link, yet not one to guess."""
    return secrets.token_urlsafe(9)


def link_not_found(link_id: str) -> NotFound:
    return NotFound(f"Payment link {link_id} not found", code="LINK_NOT_FOUND")


def link_archived(link_id: str) -> Conflict:
    return Conflict(
        f"Payment link {link_id} is archived: it can no longer change", code="LINK_ARCHIVED"
    )


async def create_link(
    db: Database,
    ask: LinkAsk,
    *,
    chains: Mapping[str, OrderChain],
    allow_http: bool,
    actor: str,
) -> LinkRow:
    now = utc_now()
    amount = check_link(ask, chains=chains, allow_http=allow_http, now=now)
    link_id = new_link_id()
    values = {
        "id": link_id,
        "slug": new_slug(),
        "title": ask.title,
        "description": ask.description,
        "amount": amount,
        "currencies": [{"currency": c.currency, "chainId": c.chain_id} for c in ask.currencies],
        "status": DRAFT,
        "inventory_total": ask.inventory_total,
        "expires_at": ask.expires_at,
        "metadata": ask.metadata,
        "success_url": ask.success_url,
        "cancel_url": ask.cancel_url,
        "created_at": now,
        "updated_at": now,
        "created_by": actor,
    }

    async def work(conn: AsyncConnection) -> LinkRow:
        await repo.insert_link(conn, values)
        await _audit(conn, actor, "payment_link.create", link_id, now)
        return await _found(conn, link_id)

    return await db.run_write(work)


async def get_link(conn: AsyncConnection, link_id: str) -> LinkRow:
    return await _found(conn, link_id)


async def patch_link(
    db: Database, link_id: str, changes: Mapping[str, Any], *, actor: str
) -> LinkRow:
    """`changes`: some of records.PATCHABLE, by column name; null clears a field."""
    now = utc_now()
    if "expires_at" in changes:
        check_expiry(changes["expires_at"], now)

    async def work(conn: AsyncConnection) -> LinkRow:
        link = await _found(conn, link_id, lock=True)
        if link.status == ARCHIVED:
            raise link_archived(link_id)
        if "inventory_total" in changes:
            taken = link.inventory_reserved + link.inventory_sold
            check_inventory(changes["inventory_total"], taken=taken)
        await repo.update_link(conn, link_id, {**changes, "updated_at": now})
        details = {"fields": sorted(changes)}
        await _audit(conn, actor, "payment_link.update", link_id, now, details)
        return await _found(conn, link_id)

    return await db.run_write(work)


async def publish_link(
    db: Database, link_id: str, *, chains: Mapping[str, OrderChain], actor: str
) -> tuple[LinkRow, bool]:
    """(the link, whether this call published it): a draft becomes public; a published link
    is returned as it is; an archived one stays archived (LINK_ARCHIVED)."""
    now = utc_now()

    async def work(conn: AsyncConnection) -> tuple[LinkRow, bool]:
        link = await _found(conn, link_id, lock=True)
        if link.status == ARCHIVED:
            raise link_archived(link_id)
        if link.status == PUBLISHED:
            return link, False
        # The configuration may have changed since the draft was written.
        check_currencies(link.choices, chains)
        values = {"status": PUBLISHED, "published_at": now, "updated_at": now}
        await repo.update_link(conn, link_id, values)
        await _audit(conn, actor, "payment_link.publish", link_id, now)
        return await _found(conn, link_id), True

    return await db.run_write(work)


async def archive_link(db: Database, link_id: str, *, actor: str) -> tuple[LinkRow, bool]:
    """(the link, whether this call archived it). Its checkout takes no more orders; the
    orders it made run their course and still move its inventory."""
    now = utc_now()

    async def work(conn: AsyncConnection) -> tuple[LinkRow, bool]:
        link = await _found(conn, link_id, lock=True)
        if link.status == ARCHIVED:
            return link, False
        values = {"status": ARCHIVED, "archived_at": now, "updated_at": now}
        await repo.update_link(conn, link_id, values)
        await _audit(conn, actor, "payment_link.archive", link_id, now)
        return await _found(conn, link_id), True

    return await db.run_write(work)


async def _found(conn: AsyncConnection, link_id: str, *, lock: bool = False) -> LinkRow:
    link = await repo.link_by_id(conn, link_id, lock=lock)
    if link is None:
        raise link_not_found(link_id)
    return link


async def _audit(
    conn: AsyncConnection,
    actor: str,
    action: str,
    link_id: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    await insert_audit(conn, actor=actor, action=action, subject=link_id, details=details, now=now)
