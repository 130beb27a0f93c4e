"""SQL for a payment link's inventory, which the link's orders move (docs/design.md, Payment
links).

`reserve` takes one unit for a new order of the link, in the transaction that creates the order,
only while the link is published, not past its expiry, not sold out and below its cap of pending
orders: one conditional UPDATE, so concurrent checkouts queue on the link's row (PostgreSQL) or
on the one writer (SQLite) and exactly the units there are get taken. If the order cannot be
created after all (no free address), the transaction rolls the reservation back with it.
`settle` sells the unit or gives it back when the order ends, in the ending's transaction
(pool.orders.ending).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import ScalarSelect

from pool.kit.tables import payment_link, payment_order
from pool.kit.types import UTCDateTime
from pool.vocabulary import COMPLETED, PENDING, PUBLISHED, OrderStatus

_link = payment_link.c
_RESERVE = (
    update(payment_link)
    .where(
        _link.id == bindparam("p_id"),
        _link.status == PUBLISHED,
        or_(_link.expires_at.is_(None), _link.expires_at > bindparam("p_now", type_=UTCDateTime())),
        or_(
            _link.inventory_total.is_(None),
            _link.inventory_reserved + _link.inventory_sold < _link.inventory_total,
        ),
        _link.inventory_reserved < bindparam("p_pending_cap"),
    )
    .values(inventory_reserved=_link.inventory_reserved + 1)
    .returning(_link.id)
)


async def reserve(conn: AsyncConnection, *, link_id: str, now: datetime, pending_cap: int) -> bool:
    """Whether a unit of the link was reserved for an order this transaction creates."""
    parameters = {"p_id": link_id, "p_now": now, "p_pending_cap": pending_cap}
    return (await conn.execute(_RESERVE, parameters)).first() is not None


async def settle(conn: AsyncConnection, *, link_id: str, status: OrderStatus) -> None:
    """An order of the link ended: its unit is sold (completed) or free again."""
    sold = 1 if status == COMPLETED else 0
    await conn.execute(
        update(payment_link)
        .where(_link.id == link_id)
        .values(
            inventory_reserved=_link.inventory_reserved - 1,
            inventory_sold=_link.inventory_sold + sold,
        )
    )


@dataclass(frozen=True, slots=True)
class LinkCount:
    """A link's counters beside what its orders say (reconciliation, invariant 16)."""

    link_id: str
    reserved: int
    pending_orders: int
    sold: int
    completed_orders: int


def _orders_of_link(status: str) -> ScalarSelect[int]:
    return (
        select(func.count())
        .where(payment_order.c.payment_link_id == _link.id, payment_order.c.status == status)
        .scalar_subquery()
    )


async def miscounted_links(conn: AsyncConnection) -> list[LinkCount]:
    """Every link whose reserved or sold units differ from its pending or completed orders, in
    one statement (one snapshot: a checkout committing meanwhile is in both or neither)."""
    pending, completed = _orders_of_link(PENDING), _orders_of_link(COMPLETED)
    counted = select(
        _link.id, _link.inventory_reserved, pending, _link.inventory_sold, completed
    ).subquery()
    columns = counted.c
    rows = await conn.execute(
        select(counted).where((columns[1] != columns[2]) | (columns[3] != columns[4]))
    )
    return [LinkCount(*row) for row in rows.all()]
