"""SQL for an endpoint's recovery: its backlog made due now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import delivery
from pool.vocabulary import DELIVERY_PENDING


async def make_backlog_due(
    conn: AsyncConnection, *, endpoint_id: str, now: datetime, waiting_past: datetime
) -> int:
    """The endpoint's pending deliveries due after `waiting_past` are due at `now`; how many.

    Only deliveries waiting out a backoff are due that late: a claimed one's lease ends
    sooner, so an attempt under way is never made due again (never two at a time).
    """
    result = await conn.execute(
        update(delivery)
        .where(
            delivery.c.endpoint_id == endpoint_id,
            delivery.c.status == DELIVERY_PENDING,
            delivery.c.next_attempt_at > waiting_past,
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount or 0)
