"""SQL for payment links: insert, read, list, change. Their inventory counters are moved by
their orders (pool.orders.link_inventory_repository)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from pool.kit.tables import payment_link, payment_order
from pool.links.records import LinkRow
from pool.vocabulary import PENDING

_COLUMNS = tuple(payment_link.c[field.name] for field in fields(LinkRow))


def _links() -> Select[Any]:
    return select(*_COLUMNS)


async def insert_link(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(insert(payment_link).values(**values))


async def link_by_id(conn: AsyncConnection, link_id: str, *, lock: bool = False) -> LinkRow | None:
    """`lock`: the row stays locked until the transaction ends (PostgreSQL; SQLite has one
    writer anyway), so a change and a checkout of one link run one after the other."""
    statement = _links().where(payment_link.c.id == link_id)
    if lock:
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).first()
    return None if row is None else LinkRow(*row)


async def link_by_slug(conn: AsyncConnection, slug: str) -> LinkRow | None:
    row = (await conn.execute(_links().where(payment_link.c.slug == slug))).first()
    return None if row is None else LinkRow(*row)


async def list_links(
    conn: AsyncConnection, *, statuses: Sequence[str], offset: int, limit: int
) -> tuple[list[LinkRow], int]:
    """A page of links, newest first, and how many match in all."""
    conditions = [payment_link.c.status.in_(list(statuses))] if statuses else []
    counted = select(func.count()).select_from(payment_link).where(*conditions)
    total = int(await conn.scalar(counted) or 0)
    page = (
        _links()
        .where(*conditions)
        .order_by(payment_link.c.created_at.desc(), payment_link.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [LinkRow(*row) for row in (await conn.execute(page)).all()], total


async def update_link(conn: AsyncConnection, link_id: str, values: Mapping[str, Any]) -> None:
    await conn.execute(update(payment_link).where(payment_link.c.id == link_id).values(**values))


async def earliest_pending_end(conn: AsyncConnection, link_id: str) -> datetime | None:
    """When the link's first pending order ends at the latest (its grace end): a payer refused
    for the cap of pending orders may try again then."""
    statement = select(func.min(payment_order.c.grace_ends_at)).where(
        payment_order.c.payment_link_id == link_id, payment_order.c.status == PENDING
    )
    moment: datetime | None = await conn.scalar(statement)
    return moment
