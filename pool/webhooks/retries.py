"""An operator's retry: failed deliveries queued again, one or all, with a fresh retry budget.

The API and `addrpool webhooks retry` both call these, so they refuse the same things with the
same codes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.errors import Conflict, NotFound
from pool.vocabulary import DELIVERY_FAILED, DELIVERY_SUCCEEDED
from pool.webhooks import endpoints_repository as repo
from pool.webhooks.endpoints_repository import DeliveryRow


async def retry_all_failed(conn: AsyncConnection, *, now: datetime) -> int:
    """Every failed delivery back to pending; returns how many."""
    return await repo.requeue(conn, now=now)


async def retry_delivery(conn: AsyncConnection, delivery_id: str, *, now: datetime) -> DeliveryRow:
    """One failed delivery back to pending; returns it as it now is."""
    found = await repo.get_delivery(conn, delivery_id)
    if found is None:
        raise NotFound(f"No delivery {delivery_id}", code="DELIVERY_NOT_FOUND")
    if found.status != DELIVERY_FAILED:
        raise Conflict(
            f"Delivery {delivery_id} is {found.status}; only failed deliveries are retried",
            code="DELIVERY_NOT_FAILED",
        )
    await repo.requeue(conn, now=now, delivery_id=delivery_id)
    return await repo.get_delivery(conn, delivery_id) or found


async def retry_failed_of_endpoint(
    conn: AsyncConnection, endpoint_id: str, *, now: datetime
) -> int:
    """An endpoint's failed deliveries back to pending; returns how many."""
    return await repo.requeue(conn, now=now, endpoint_id=endpoint_id)


async def redeliver(conn: AsyncConnection, delivery_id: str, *, now: datetime) -> DeliveryRow:
    """A delivery sent again whatever its outcome, a succeeded one included (a receiver that
    lost what it had acknowledged; it dedupes by the event's id). A pending one is on its way
    already; a cancelled one's endpoint is gone."""
    found = await repo.get_delivery(conn, delivery_id)
    if found is None:
        raise NotFound(f"No delivery {delivery_id}", code="DELIVERY_NOT_FOUND")
    again = (DELIVERY_FAILED, DELIVERY_SUCCEEDED)
    if found.status not in again:
        raise Conflict(
            f"Delivery {delivery_id} is {found.status}; only failed or succeeded deliveries "
            "are sent again",
            code="DELIVERY_NOT_REDELIVERABLE",
        )
    await repo.requeue(conn, now=now, delivery_id=delivery_id, statuses=again)
    return await repo.get_delivery(conn, delivery_id) or found
