"""SQL the console's overview reads besides what other domains already answer: webhook health
per endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import delivery, webhook_endpoint


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    endpoint_id: str
    url: str
    enabled: bool
    pending: int
    failed: int
    succeeded_recently: int
    last_status: int | None


async def endpoint_health(conn: AsyncConnection, *, since: datetime) -> list[EndpointHealth]:
    """Every endpoint not deleted: its pending and failed deliveries, how many of those created
    since `since` succeeded, and the status code of its latest attempted delivery.

    Each count walks an index over the rows it counts, never an endpoint's whole delivery
    history (docs/performance.md, The console's overview)."""
    endpoints = (
        await conn.execute(
            select(webhook_endpoint.c.id, webhook_endpoint.c.url, webhook_endpoint.c.enabled)
            .where(webhook_endpoint.c.deleted_at.is_(None))
            .order_by(webhook_endpoint.c.created_at)
        )
    ).all()
    unsettled = await _unsettled_counts(conn)
    return [
        EndpointHealth(
            endpoint_id,
            url,
            bool(enabled),
            unsettled.get((endpoint_id, "pending"), 0),
            unsettled.get((endpoint_id, "failed"), 0),
            await _succeeded_since(conn, endpoint_id, since),
            await _last_status(conn, endpoint_id),
        )
        for endpoint_id, url, enabled in endpoints
    ]


async def _unsettled_counts(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """(endpoint, pending|failed) → deliveries, from the index the delivery workers claim by."""
    statement = (
        select(delivery.c.endpoint_id, delivery.c.status, func.count())
        .where(delivery.c.status.in_(("pending", "failed")))
        .group_by(delivery.c.endpoint_id, delivery.c.status)
    )
    return {(e, s): int(n) for e, s, n in (await conn.execute(statement)).all()}


async def _succeeded_since(conn: AsyncConnection, endpoint_id: str, since: datetime) -> int:
    count = await conn.scalar(
        select(func.count()).where(
            delivery.c.endpoint_id == endpoint_id,
            delivery.c.created_at >= since,
            delivery.c.status == "succeeded",
        )
    )
    return int(count or 0)


async def _last_status(conn: AsyncConnection, endpoint_id: str) -> int | None:
    """The answer to the endpoint's newest delivery that has had an attempt."""
    status = await conn.scalar(
        select(delivery.c.last_status_code)
        .where(delivery.c.endpoint_id == endpoint_id, delivery.c.last_attempt_at.is_not(None))
        .order_by(delivery.c.created_at.desc())
        .limit(1)
    )
    return None if status is None else int(status)
