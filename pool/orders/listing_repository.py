"""SQL for listing orders, counting them, and what the API's cancel needs to know.

Amounts are summed exactly: on PostgreSQL in SQL (NUMERIC), on SQLite in Python (its SUM over
the TEXT amounts would go through a lossy REAL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from pool.kit.tables import deposit, payment_order
from pool.orders.repository import OrderRow, orders_query
from pool.vocabulary import COMPLETED, CONFIRMED, CREDITED, PAYMENT, PENDING


@dataclass(frozen=True, slots=True)
class OrderFilters:
    statuses: Sequence[str] = ()
    chain_id: str | None = None
    currency: str | None = None
    order_reference: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _conditions(filters: OrderFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(payment_order.c.status.in_(list(filters.statuses)))
    if filters.chain_id is not None:
        conditions.append(payment_order.c.chain_id == filters.chain_id)
    if filters.currency is not None:
        conditions.append(payment_order.c.currency == filters.currency)
    if filters.order_reference is not None:
        conditions.append(payment_order.c.order_reference == filters.order_reference)
    if filters.created_after is not None:
        conditions.append(payment_order.c.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(payment_order.c.created_at < filters.created_before)
    return conditions


async def list_orders(
    conn: AsyncConnection, *, filters: OrderFilters, offset: int, limit: int
) -> tuple[list[OrderRow], int]:
    """A page of orders, newest first, and how many match in all."""
    conditions = _conditions(filters)
    counted = select(func.count()).select_from(payment_order).where(*conditions)
    total = int(await conn.scalar(counted) or 0)
    page = (
        orders_query()
        .where(*conditions)
        .order_by(payment_order.c.created_at.desc(), payment_order.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [OrderRow(*row) for row in (await conn.execute(page)).all()], total


async def lock_order(conn: AsyncConnection, order_id: str) -> OrderRow | None:
    """The order, its row locked until the transaction ends on PostgreSQL (a cancel and a
    completion of one order then run one after the other); SQLite has one writer anyway."""
    statement = orders_query().where(payment_order.c.id == order_id)
    if conn.dialect.name == "postgresql":
        statement = statement.with_for_update(of=payment_order)
    row = (await conn.execute(statement)).first()
    return None if row is None else OrderRow(*row)


async def has_received_payment(conn: AsyncConnection, order_id: str) -> bool:
    """Whether a counted payment to the order is on chain (pending, confirmed or completed):
    such an order may no longer be cancelled. Dust is no payment (invariant 11)."""
    statement = select(
        select(deposit.c.id)
        .where(
            deposit.c.order_id == order_id,
            deposit.c.order_role == PAYMENT,
            deposit.c.status.in_((PENDING, CONFIRMED, COMPLETED)),
        )
        .exists()
    )
    return bool(await conn.scalar(statement))


@dataclass(frozen=True, slots=True)
class StatsGroup:
    chain_id: str
    currency: str
    decimals: int
    status: str
    count: int
    amount: int  # base units of these orders' amounts


async def order_groups(conn: AsyncConnection) -> list[StatsGroup]:
    """Orders by (chain, currency, decimals, status): how many, and their amounts' sum."""
    keys = (
        payment_order.c.chain_id,
        payment_order.c.currency,
        payment_order.c.decimals,
        payment_order.c.status,
    )
    if conn.dialect.name == "postgresql":
        statement = select(*keys, func.count(), func.sum(payment_order.c.amount)).group_by(*keys)
        return [
            StatsGroup(c, cur, d, s, int(n), int(total or 0))
            for c, cur, d, s, n, total in (await conn.execute(statement)).all()
        ]
    sums: dict[tuple[str, str, int, str], list[int]] = {}
    rows = await conn.stream(select(*keys, payment_order.c.amount))
    async for chain, currency, decimals, status, amount in rows:
        entry = sums.setdefault((chain, currency, decimals, status), [0, 0])
        entry[0] += 1
        entry[1] += int(amount)
    return [StatsGroup(*key, count, total) for key, (count, total) in sums.items()]


async def received_by_completed_orders(conn: AsyncConnection) -> list[tuple[str, str, int, int]]:
    """(chain, currency, decimals, base units) the completed orders received: their counted
    payments that reached their confirmations, overpayments included."""
    keys = (payment_order.c.chain_id, deposit.c.currency, deposit.c.decimals)
    joined = deposit.join(payment_order, payment_order.c.id == deposit.c.order_id)
    where = (
        payment_order.c.status == COMPLETED,
        deposit.c.order_role == PAYMENT,
        deposit.c.status.in_(CREDITED),
    )
    if conn.dialect.name == "postgresql":
        statement: Any = (
            select(*keys, func.sum(deposit.c.amount))
            .select_from(joined)
            .where(*where)
            .group_by(*keys)
        )
        return [(c, cur, d, int(n or 0)) for c, cur, d, n in (await conn.execute(statement))]
    sums: dict[tuple[str, str, int], int] = {}
    rows = await conn.stream(select(*keys, deposit.c.amount).select_from(joined).where(*where))
    async for chain, currency, decimals, amount in rows:
        sums[(chain, currency, decimals)] = sums.get((chain, currency, decimals), 0) + int(amount)
    return [(*key, total) for key, total in sums.items()]


async def average_payment_seconds(conn: AsyncConnection) -> float | None:
    """Mean time from creation to completion of the completed orders."""
    created, completed = payment_order.c.created_at, payment_order.c.completed_at
    if conn.dialect.name == "postgresql":
        seconds: Any = func.extract("epoch", completed - created)
    else:
        seconds = (func.julianday(completed) - func.julianday(created)) * 86400.0
    statement = select(cast(func.avg(seconds), Float)).where(payment_order.c.status == COMPLETED)
    value = await conn.scalar(statement)
    return None if value is None else round(float(value), 3)
