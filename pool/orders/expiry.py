"""The expiry worker: pending orders whose grace has ended become `expired` (docs/design.md,
Orders: expiry; docs/operations.md, the expiry worker).

Every `[orders] expire_every` seconds (1 s by default) it expires what is due, oldest first, in
bounded batches, each batch one transaction through `end_order` (the order's status, its
address's cooldown and its `order.expired` event together). It keeps no state: a restart reads
the same pending orders again, and an order whose grace ended while the process was down expires
on the first step after it starts. Several workers (`serve` and `worker` processes on one
PostgreSQL database) share the due orders (SKIP LOCKED), and the conditional update in
`end_order` makes the watcher completing an order and a worker expiring it end it once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.clock import utc_now
from pool.kit.config_sections import OrderSettings
from pool.kit.db import Database
from pool.kit.loop import run_every
from pool.orders.ending import end_order
from pool.orders.expiry_repository import due_orders
from pool.vocabulary import EXPIRED

log = logging.getLogger("addrpool.orders")
BATCH = 500  # orders per transaction: a backlog after a long stop never holds one lock for long


async def expire_batch(
    conn: AsyncConnection,
    *,
    settings: OrderSettings,
    limit: int = BATCH,
    now: datetime | None = None,
) -> int:
    """Expire up to `limit` due orders in the caller's transaction; how many it ended.
    `now`: the moment it is (the clock's by default)."""
    now = now or utc_now()
    ended = 0
    for due in await due_orders(conn, now=now, limit=limit):
        ended += await end_order(
            conn,
            order_id=due.order_id,
            address_id=due.address_id,
            status=EXPIRED,
            now=now,
            cooldown=settings.cooldown,
        )
    return ended


async def expire_due(db: Database, settings: OrderSettings, *, limit: int = BATCH) -> int:
    """Expire everything due now, batch after batch; how many orders it ended."""
    total = 0
    while True:
        async with db.write() as conn:
            ended = await expire_batch(conn, settings=settings, limit=limit)
        total += ended
        if ended < limit:
            return total


async def run_expiry(db: Database, settings: OrderSettings, stop: asyncio.Event) -> None:
    """`expire_due` every `expire_every` seconds until `stop`."""

    async def step() -> int:
        expired = await expire_due(db, settings)
        if expired:
            log.info("orders expired", extra={"orders": expired})
        return expired

    await run_every(
        stop,
        step,
        pause=settings.expire_every,
        log=log,
        failure="the expiry step failed; trying again",
    )
