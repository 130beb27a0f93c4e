"""An order's one terminal transition: its status, its address's cooldown and its event, in the
caller's transaction (invariant 14, docs/design.md).

Completion (the watcher's transaction), expiry (the expiry worker's) and cancellation (the API's)
all end an order here; whichever commits first wins, and the others find it no longer pending.
A payment link's order moves its unit of the link's inventory in the same transaction: sold on
completion, released otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.orders import link_inventory_repository as link_inventory
from pool.orders import repository as repo
from pool.orders.payloads import order_payloads
from pool.vocabulary import (
    CANCELLED,
    COMPLETED,
    EXPIRED,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_EXPIRED,
    OrderStatus,
)
from pool.webhooks.events_repository import insert_event
from pool.webhooks.outbox import new_event_id

EVENT_OF_STATUS = {COMPLETED: ORDER_COMPLETED, EXPIRED: ORDER_EXPIRED, CANCELLED: ORDER_CANCELLED}


async def end_order(
    conn: AsyncConnection,
    *,
    order_id: str,
    address_id: int,
    status: OrderStatus,
    now: datetime,
    cooldown: timedelta,
    completed_by: str | None = None,
) -> bool:
    """End a pending order; False (and nothing written) when it had already ended."""
    cooldown_until = now + cooldown
    ended = await repo.mark_ended(
        conn,
        order_id=order_id,
        status=status,
        now=now,
        cooldown_until=cooldown_until,
        completed_by=completed_by,
    )
    if ended is None:
        return False
    if ended.payment_link_id is not None:
        await link_inventory.settle(conn, link_id=ended.payment_link_id, status=status)
    await repo.release_address(conn, address_id=address_id, now=now, cooldown_until=cooldown_until)
    payload = (await order_payloads(conn, [order_id]))[order_id]
    await insert_event(
        conn, event_id=new_event_id(), type=EVENT_OF_STATUS[status], data=payload, now=now
    )
    return True
