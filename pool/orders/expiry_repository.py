"""SQL for the expiry worker: which pending orders may expire now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import chain_cursor, deposit, payment_order
from pool.vocabulary import PAYMENT, PENDING


@dataclass(frozen=True, slots=True)
class DueOrder:
    order_id: str
    address_id: int


async def due_orders(conn: AsyncConnection, *, now: datetime, limit: int) -> list[DueOrder]:
    """Pending orders whose grace has ended, oldest grace end first, that nothing holds open:

    - no counted payment is still confirming (it was mined in time: its confirmations decide);
    - the watcher has processed their chain past the grace end (its cursor's block is later),
      so a payment mined in time cannot still be unrecorded. A chain whose watcher is stalled,
      or has never run, holds its orders pending (the watcher's own alerts say why).

    On PostgreSQL the rows are locked, skipping those another worker (or the watcher
    completing one) holds: two expiry workers share the work instead of racing for it."""
    confirming = exists().where(
        deposit.c.order_id == payment_order.c.id,
        deposit.c.order_role == PAYMENT,
        deposit.c.status == PENDING,
    )
    statement = (
        select(payment_order.c.id, payment_order.c.address_id)
        .select_from(
            payment_order.join(
                chain_cursor,
                and_(
                    chain_cursor.c.chain_id == payment_order.c.chain_id,
                    chain_cursor.c.block_time > payment_order.c.grace_ends_at,
                ),
            )
        )
        .where(
            payment_order.c.status == PENDING,
            payment_order.c.grace_ends_at <= now,
            ~confirming,
        )
        .order_by(payment_order.c.grace_ends_at, payment_order.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True, of=payment_order)
    return [DueOrder(*row) for row in (await conn.execute(statement)).all()]
