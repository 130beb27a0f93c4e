"""Read-only SQL for reconciliation's look at orders (pool/reconciliation/orders.py): the
window's ended orders with the transfers that paid them, and the `order.*` events whose
deliveries are still unacknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import delivery, deposit, event, payment_order
from pool.orders.repository import IN_LIST
from pool.vocabulary import (
    COMPLETED,
    CREDITED,
    DELIVERY_CANCELLED,
    DELIVERY_FAILED,
    DELIVERY_SUCCEEDED,
    EXPIRED,
    LATE_PAYMENT,
    PAYMENT,
    OrderPaymentRole,
    OrderStatus,
)


@dataclass(frozen=True, slots=True)
class EndedOrder:
    """A completed or expired order, with what reconciliation compares."""

    id: str
    chain_id: str
    status: OrderStatus
    amount: int
    decimals: int
    currency: str
    created_at: datetime
    grace_ends_at: datetime
    completed_by: str | None


@dataclass(frozen=True, slots=True)
class PaidTransfer:
    """A transfer of the order's own token to its address (role payment or late)."""

    order_id: str
    deposit_id: str
    role: OrderPaymentRole
    status: str
    amount: int
    block_time: datetime | None
    tx_hash: str
    block_number: int


@dataclass(frozen=True, slots=True)
class OrderAnnouncement:
    """One `order.*` event with the deliveries that neither succeeded nor were cancelled."""

    seq: int
    event_id: str
    type: str
    order_id: str | None
    chain_id: str | None
    unacknowledged: int
    failed: int


_ENDED = (COMPLETED, EXPIRED)


def _ended_since(since: datetime, chain_ids: Sequence[str] | None) -> Any:
    """Completed and expired orders created within the window (`ix_payment_order_created_at`
    bounds the scan; a cancelled order received nothing, by the cancel rule)."""
    window = and_(payment_order.c.created_at >= since, payment_order.c.status.in_(_ENDED))
    if chain_ids is None:
        return window
    return and_(window, payment_order.c.chain_id.in_(list(chain_ids)))


async def created_since(
    conn: AsyncConnection, *, order_ids: Sequence[str], since: datetime
) -> set[str]:
    """Those of `order_ids` created within the window: the orders a run looks at again."""
    if not order_ids:
        return set()
    rows = await conn.execute(
        select(payment_order.c.id).where(
            payment_order.c.id.in_(list(order_ids)), payment_order.c.created_at >= since
        )
    )
    return set(rows.scalars().all())


async def count_ended(
    conn: AsyncConnection, *, since: datetime, chain_ids: Sequence[str] | None
) -> int:
    statement = select(func.count()).select_from(payment_order)
    return int(await conn.scalar(statement.where(_ended_since(since, chain_ids))) or 0)


async def ended_orders(
    conn: AsyncConnection,
    *,
    since: datetime,
    chain_ids: Sequence[str] | None,
    disputed: Sequence[str] = (),
) -> list[EndedOrder]:
    """The window's ended orders whose records can disagree: a completed one without a
    confirmed payment of exactly its amount (the settled majority is left in the database), an
    expired one with a confirmed transfer of its token, and any a `disputed` transfer paid.

    Exact amounts compare equal on both databases (one canonical text on SQLite); their sums
    are the caller's (SQLite's SUM over TEXT goes through a lossy REAL)."""
    credited = and_(deposit.c.order_id == payment_order.c.id, deposit.c.status.in_(CREDITED))
    paid_exactly = exists().where(
        credited, deposit.c.order_role == PAYMENT, deposit.c.amount == payment_order.c.amount
    )
    received = exists().where(credited, deposit.c.order_role.in_((PAYMENT, LATE_PAYMENT)))
    can_disagree = or_(
        and_(payment_order.c.status == COMPLETED, ~paid_exactly),
        and_(payment_order.c.status == EXPIRED, received),
    )
    if disputed:
        paid_by = select(deposit.c.order_id).where(deposit.c.id.in_(list(disputed)))
        can_disagree = or_(can_disagree, payment_order.c.id.in_(paid_by))
    statement = select(
        payment_order.c.id,
        payment_order.c.chain_id,
        payment_order.c.status,
        payment_order.c.amount,
        payment_order.c.decimals,
        payment_order.c.currency,
        payment_order.c.created_at,
        payment_order.c.grace_ends_at,
        payment_order.c.completed_by,
    ).where(_ended_since(since, chain_ids), can_disagree)
    rows = await conn.execute(statement.order_by(payment_order.c.created_at))
    return [EndedOrder(*row) for row in rows.all()]


async def paid_transfers(
    conn: AsyncConnection, order_ids: Sequence[str]
) -> dict[str, list[PaidTransfer]]:
    """order id → its transfers of its own token (payments and late ones), in chain order.

    Summed by the caller: SQLite's SUM over TEXT amounts goes through a lossy REAL."""
    found: dict[str, list[PaidTransfer]] = {order_id: [] for order_id in order_ids}
    for start in range(0, len(order_ids), IN_LIST):
        chunk = list(order_ids[start : start + IN_LIST])
        statement = (
            select(
                deposit.c.order_id,
                deposit.c.id,
                deposit.c.order_role,
                deposit.c.status,
                deposit.c.amount,
                deposit.c.block_time,
                deposit.c.tx_hash,
                deposit.c.block_number,
            )
            .where(
                deposit.c.order_id.in_(chunk),
                deposit.c.order_role.in_((PAYMENT, LATE_PAYMENT)),
            )
            .order_by(deposit.c.block_number, deposit.c.log_index)
        )
        for row in (await conn.execute(statement)).all():
            found[row[0]].append(PaidTransfer(*row))
    return found


async def unacknowledged_order_events(
    conn: AsyncConnection, *, since: datetime, created_before: datetime
) -> list[OrderAnnouncement]:
    """`order.*` events written within [since, created_before) some delivery of which has
    neither succeeded nor been cancelled. Read from the open deliveries (`ix_delivery_due`
    leads with the status: the acknowledged majority is never read) to their events."""
    failed = func.sum(case((delivery.c.status == DELIVERY_FAILED, 1), else_=0))
    statement = (
        select(
            event.c.seq,
            event.c.id,
            event.c.type,
            event.c.data["orderId"].as_string(),
            event.c.data["chainId"].as_string(),
            func.count(delivery.c.id),
            failed,
        )
        .select_from(delivery.join(event, event.c.seq == delivery.c.event_seq))
        .where(
            delivery.c.status.not_in((DELIVERY_SUCCEEDED, DELIVERY_CANCELLED)),
            event.c.created_at >= since,
            event.c.created_at < created_before,
            event.c.type.like("order.%"),
        )
        .group_by(event.c.seq)
        .order_by(event.c.seq)
    )
    return [
        OrderAnnouncement(
            int(seq), str(event_id), str(kind), order_id, chain_id, int(open_), int(bad or 0)
        )
        for seq, event_id, kind, order_id, chain_id, open_, bad in (
            await conn.execute(statement)
        ).all()
    ]
