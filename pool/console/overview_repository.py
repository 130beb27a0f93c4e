"""SQL the console's overview reads besides what other domains already answer: webhook health
per endpoint and binds per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import binding, delivery, webhook_endpoint
from pool.vocabulary import Protocol


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
    """Every endpoint not deleted: its pending and failed deliveries, those that succeeded since
    `since`, and the status code of its latest attempt."""
    counted = (
        select(
            delivery.c.endpoint_id,
            func.sum(case((delivery.c.status == "pending", 1), else_=0)).label("pending"),
            func.sum(case((delivery.c.status == "failed", 1), else_=0)).label("failed"),
            func.sum(
                case(
                    ((delivery.c.status == "succeeded") & (delivery.c.completed_at >= since), 1),
                    else_=0,
                )
            ).label("succeeded"),
        )
        .group_by(delivery.c.endpoint_id)
        .subquery()
    )
    last_status = (
        select(delivery.c.last_status_code)
        .where(
            delivery.c.endpoint_id == webhook_endpoint.c.id,
            delivery.c.last_attempt_at.is_not(None),
        )
        .order_by(delivery.c.last_attempt_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    statement = (
        select(
            webhook_endpoint.c.id,
            webhook_endpoint.c.url,
            webhook_endpoint.c.enabled,
            func.coalesce(counted.c.pending, 0),
            func.coalesce(counted.c.failed, 0),
            func.coalesce(counted.c.succeeded, 0),
            last_status,
        )
        .select_from(
            webhook_endpoint.outerjoin(counted, counted.c.endpoint_id == webhook_endpoint.c.id)
        )
        .where(webhook_endpoint.c.deleted_at.is_(None))
        .order_by(webhook_endpoint.c.created_at)
    )
    rows = (await conn.execute(statement)).all()
    return [
        EndpointHealth(row[0], row[1], bool(row[2]), int(row[3]), int(row[4]), int(row[5]), row[6])
        for row in rows
    ]


async def binds_per_day(
    conn: AsyncConnection, *, protocol: Protocol, since: datetime
) -> dict[str, int]:
    """`YYYY-MM-DD` (UTC) → binds that day, from `since` (the index on protocol and bound_at)."""
    if conn.dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", binding.c.bound_at), "YYYY-MM-DD")
    else:  # SQLite keeps UTC moments as ISO text
        day = func.substr(binding.c.bound_at, 1, 10)
    statement = (
        select(day, func.count())
        .where(binding.c.protocol == protocol, binding.c.bound_at >= since)
        .group_by(day)
    )
    return {str(d): int(n) for d, n in (await conn.execute(statement)).all()}
