"""SQL for reading orders and the transfers that reached their addresses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from pool.kit.tables import address, chain_cursor, deposit, payment_order
from pool.vocabulary import (
    ALLOCATED,
    AVAILABLE,
    CANCELLED,
    COMPLETED,
    EXPIRED,
    PENDING,
    OrderPaymentRole,
    OrderStatus,
    Protocol,
)

# Bounded IN lists (PostgreSQL takes at most 32,767 parameters per statement).
IN_LIST = 1000


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: str
    order_reference: str
    protocol: Protocol
    chain_id: str
    currency: str
    token_contract: str
    decimals: int
    amount: int
    address_id: int
    address: str
    status: OrderStatus
    required_confirmations: int
    metadata: dict[str, Any] | None
    success_url: str | None
    cancel_url: str | None
    payment_url: str
    created_at: datetime
    window_ends_at: datetime
    grace_ends_at: datetime
    completed_at: datetime | None
    expired_at: datetime | None
    cancelled_at: datetime | None
    completed_by: str | None
    cooldown_until: datetime | None
    payment_link_id: str | None = None  # the payment link whose checkout created it


@dataclass(frozen=True, slots=True)
class Ended:
    """An order this transaction ended."""

    payment_link_id: str | None


@dataclass(frozen=True, slots=True)
class OrderTransfer:
    """A deposit to an order's address, as the order shows it."""

    order_id: str
    role: OrderPaymentRole
    deposit_id: str
    chain_id: str
    currency: str
    tx_hash: str
    log_index: int
    block_number: int
    block_time: datetime | None
    amount: int
    decimals: int
    status: str
    detected_at: datetime
    chain_head: int | None


@dataclass(frozen=True, slots=True)
class OrderUse:
    """An address's latest order, as the watcher reads it beside the address's latest binding:
    enough to tell whether a transfer is that order's, and what it is to it."""

    order_id: str
    chain_id: str
    token_contract: str
    status: OrderStatus
    created_at: datetime
    grace_ends_at: datetime
    ended_at: datetime | None  # completed, expired or cancelled at
    cooldown_until: datetime | None


def order_use_columns() -> tuple[Any, ...]:
    """The columns of `OrderUse`, in its order (a query joins `payment_order` for them)."""
    return (
        payment_order.c.id,
        payment_order.c.chain_id,
        payment_order.c.token_contract,
        payment_order.c.status,
        payment_order.c.created_at,
        payment_order.c.grace_ends_at,
        func.coalesce(
            payment_order.c.completed_at, payment_order.c.expired_at, payment_order.c.cancelled_at
        ),
        payment_order.c.cooldown_until,
    )


def orders_query() -> Select[Any]:
    return select(
        payment_order.c.id,
        payment_order.c.order_reference,
        payment_order.c.protocol,
        payment_order.c.chain_id,
        payment_order.c.currency,
        payment_order.c.token_contract,
        payment_order.c.decimals,
        payment_order.c.amount,
        payment_order.c.address_id,
        address.c.address,
        payment_order.c.status,
        payment_order.c.required_confirmations,
        payment_order.c.metadata,
        payment_order.c.success_url,
        payment_order.c.cancel_url,
        payment_order.c.payment_url,
        payment_order.c.created_at,
        payment_order.c.window_ends_at,
        payment_order.c.grace_ends_at,
        payment_order.c.completed_at,
        payment_order.c.expired_at,
        payment_order.c.cancelled_at,
        payment_order.c.completed_by,
        payment_order.c.cooldown_until,
        payment_order.c.payment_link_id,
    ).select_from(payment_order.join(address, address.c.id == payment_order.c.address_id))


async def orders_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, OrderRow]:
    found: dict[str, OrderRow] = {}
    for start in range(0, len(ids), IN_LIST):
        chunk = list(ids[start : start + IN_LIST])
        statement = orders_query().where(payment_order.c.id.in_(chunk))
        for row in (await conn.execute(statement)).all():
            found[row[0]] = OrderRow(*row)
    return found


async def order_by_reference(conn: AsyncConnection, reference: str) -> OrderRow | None:
    statement = orders_query().where(payment_order.c.order_reference == reference)
    row = (await conn.execute(statement)).first()
    return None if row is None else OrderRow(*row)


_TRANSFER_COLUMNS = (
    deposit.c.order_id,
    deposit.c.order_role,
    deposit.c.id,
    deposit.c.chain_id,
    deposit.c.currency,
    deposit.c.tx_hash,
    deposit.c.log_index,
    deposit.c.block_number,
    deposit.c.block_time,
    deposit.c.amount,
    deposit.c.decimals,
    deposit.c.status,
    deposit.c.detected_at,
    chain_cursor.c.head,
)


async def transfers_of(
    conn: AsyncConnection, order_ids: Sequence[str]
) -> dict[str, list[OrderTransfer]]:
    """order id → the deposits linked to it, in chain order within each chain."""
    transfers: dict[str, list[OrderTransfer]] = {order_id: [] for order_id in order_ids}
    for start in range(0, len(order_ids), IN_LIST):
        statement: Select[Any] = (
            select(*_TRANSFER_COLUMNS)
            .select_from(
                deposit.outerjoin(chain_cursor, chain_cursor.c.chain_id == deposit.c.chain_id)
            )
            .where(deposit.c.order_id.in_(list(order_ids[start : start + IN_LIST])))
            .order_by(deposit.c.chain_id, deposit.c.block_number, deposit.c.log_index)
        )
        for row in (await conn.execute(statement)).all():
            transfers[row[0]].append(OrderTransfer(*row))
    return transfers


_ORDER_COLUMNS = len(orders_query().selected_columns)
# The payer's page polls this: the order and its transfers in one statement, built once.
_ORDER_WITH_TRANSFERS = (
    orders_query()
    .add_columns(*_TRANSFER_COLUMNS)
    .outerjoin(deposit, deposit.c.order_id == payment_order.c.id)
    .outerjoin(chain_cursor, chain_cursor.c.chain_id == deposit.c.chain_id)
    .where(payment_order.c.id == bindparam("p_order_id"))
    .order_by(deposit.c.chain_id, deposit.c.block_number, deposit.c.log_index)
)


async def order_with_transfers(
    conn: AsyncConnection, order_id: str
) -> tuple[OrderRow, list[OrderTransfer]] | None:
    """One order and its transfers (as `transfers_of` lists them), in one round trip."""
    rows = (await conn.execute(_ORDER_WITH_TRANSFERS, {"p_order_id": order_id})).all()
    if not rows:
        return None
    order = OrderRow(*rows[0][:_ORDER_COLUMNS])
    transfers = [OrderTransfer(*row[_ORDER_COLUMNS:]) for row in rows if row[_ORDER_COLUMNS + 2]]
    return order, transfers


async def mark_ended(
    conn: AsyncConnection,
    *,
    order_id: str,
    status: OrderStatus,
    now: datetime,
    cooldown_until: datetime,
    completed_by: str | None = None,
) -> Ended | None:
    """Move a pending order to its terminal status; None when it was no longer pending (a
    racing writer ended it first: the one conditional UPDATE decides, invariant 14)."""
    moment_column = {
        COMPLETED: payment_order.c.completed_at,
        EXPIRED: payment_order.c.expired_at,
        CANCELLED: payment_order.c.cancelled_at,
    }[status]
    statement = (
        update(payment_order)
        .where(payment_order.c.id == order_id, payment_order.c.status == PENDING)
        .values(
            {
                payment_order.c.status: status,
                moment_column: now,
                payment_order.c.completed_by: completed_by,
                payment_order.c.cooldown_until: cooldown_until,
            }
        )
        .returning(payment_order.c.payment_link_id)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else Ended(payment_link_id=row[0])


async def release_address(
    conn: AsyncConnection, *, address_id: int, now: datetime, cooldown_until: datetime
) -> None:
    """An ended order's address goes back to the pool after its cooldown, as a used one (never
    the claim's "never used" shortcut, which does not look at cooldowns)."""
    await conn.execute(
        update(address)
        .where(address.c.id == address_id, address.c.status == ALLOCATED)
        .values(
            status=AVAILABLE, cooldown_until=cooldown_until, recycled_at=now, last_reference=None
        )
    )


async def order_links(
    conn: AsyncConnection, deposit_ids: Sequence[str]
) -> dict[str, tuple[str, OrderPaymentRole]]:
    """deposit id → (its order, its role), for those of these deposits that are an order's."""
    links: dict[str, tuple[str, OrderPaymentRole]] = {}
    for start in range(0, len(deposit_ids), IN_LIST):
        chunk = list(deposit_ids[start : start + IN_LIST])
        statement = select(deposit.c.id, deposit.c.order_id, deposit.c.order_role).where(
            deposit.c.id.in_(chunk), deposit.c.order_id.is_not(None)
        )
        for deposit_id, order_id, role in (await conn.execute(statement)).all():
            links[deposit_id] = (order_id, role)
    return links


async def relink_candidates(
    conn: AsyncConnection, deposit_ids: Sequence[str]
) -> dict[str, tuple[str, str, str, datetime | None]]:
    """deposit id → (order, chain, token contract, block time) of these deposits' order ones."""
    found: dict[str, tuple[str, str, str, datetime | None]] = {}
    for start in range(0, len(deposit_ids), IN_LIST):
        chunk = list(deposit_ids[start : start + IN_LIST])
        statement = select(
            deposit.c.id,
            deposit.c.order_id,
            deposit.c.chain_id,
            deposit.c.token_contract,
            deposit.c.block_time,
        ).where(deposit.c.id.in_(chunk), deposit.c.order_id.is_not(None))
        for row in (await conn.execute(statement)).all():
            found[row[0]] = (row[1], row[2], row[3], row[4])
    return found


async def order_use(conn: AsyncConnection, order_id: str) -> OrderUse | None:
    statement = select(*order_use_columns()).where(payment_order.c.id == order_id)
    row = (await conn.execute(statement)).first()
    return None if row is None else OrderUse(*row)


async def set_role(conn: AsyncConnection, *, deposit_id: str, role: OrderPaymentRole) -> None:
    await conn.execute(update(deposit).where(deposit.c.id == deposit_id).values(order_role=role))
