"""SQL for webhook endpoints, their subscriptions and deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import delivery, event, webhook_endpoint, webhook_subscription
from pool.vocabulary import DELIVERY_CANCELLED, DELIVERY_FAILED, DELIVERY_PENDING


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: str
    url: str
    description: str | None
    signature_scheme: str
    secret_encrypted: str
    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None


async def insert_endpoint(
    conn: AsyncConnection, values: dict[str, Any], events: Sequence[str]
) -> None:
    await conn.execute(insert(webhook_endpoint).values(**values))
    await replace_subscriptions(conn, endpoint_id=values["id"], events=events)


async def replace_subscriptions(
    conn: AsyncConnection, *, endpoint_id: str, events: Sequence[str]
) -> None:
    await conn.execute(
        delete(webhook_subscription).where(webhook_subscription.c.endpoint_id == endpoint_id)
    )
    if events:
        await conn.execute(
            insert(webhook_subscription),
            [{"endpoint_id": endpoint_id, "event_type": kind} for kind in events],
        )


async def live_endpoints(
    conn: AsyncConnection, *, endpoint_id: str | None = None
) -> list[EndpointRow]:
    statement = select(webhook_endpoint).where(webhook_endpoint.c.deleted_at.is_(None))
    if endpoint_id is not None:
        statement = statement.where(webhook_endpoint.c.id == endpoint_id)
    rows = (await conn.execute(statement.order_by(webhook_endpoint.c.created_at))).all()
    subscriptions = await _subscriptions(conn, [row.id for row in rows])
    return [
        EndpointRow(**dict(row._mapping), events=tuple(subscriptions.get(row.id, ())))
        for row in rows
    ]


async def _subscriptions(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(webhook_subscription.c.endpoint_id, webhook_subscription.c.event_type)
        .where(webhook_subscription.c.endpoint_id.in_(list(ids)))
        .order_by(webhook_subscription.c.event_type)
    )
    found: dict[str, list[str]] = {}
    for endpoint_id, kind in rows.all():
        found.setdefault(endpoint_id, []).append(kind)
    return found


async def update_endpoint(
    conn: AsyncConnection, *, endpoint_id: str, values: dict[str, Any]
) -> bool:
    result = await conn.execute(
        update(webhook_endpoint)
        .where(webhook_endpoint.c.id == endpoint_id, webhook_endpoint.c.deleted_at.is_(None))
        .values(**values)
    )
    return result.rowcount == 1


async def cancel_pending(conn: AsyncConnection, *, endpoint_id: str, now: datetime) -> int:
    result = await conn.execute(
        update(delivery)
        .where(delivery.c.endpoint_id == endpoint_id, delivery.c.status == DELIVERY_PENDING)
        .values(status=DELIVERY_CANCELLED, completed_at=now, next_attempt_at=None)
    )
    return int(result.rowcount)


async def insert_delivery(
    conn: AsyncConnection, *, delivery_id: str, event_seq: int, endpoint_id: str, now: datetime
) -> None:
    await conn.execute(
        insert(delivery).values(
            id=delivery_id,
            event_seq=event_seq,
            endpoint_id=endpoint_id,
            status=DELIVERY_PENDING,
            attempts=0,
            next_attempt_at=now,
            retry_from=now,
            created_at=now,
        )
    )


def _deliveries() -> Any:
    return select(
        delivery.c.id,
        event.c.id,
        event.c.type,
        delivery.c.endpoint_id,
        delivery.c.status,
        delivery.c.attempts,
        delivery.c.next_attempt_at,
        delivery.c.last_attempt_at,
        delivery.c.last_status_code,
        delivery.c.last_error,
        delivery.c.created_at,
        delivery.c.completed_at,
    ).select_from(delivery.join(event, event.c.seq == delivery.c.event_seq))


async def list_deliveries(
    conn: AsyncConnection,
    *,
    endpoint_id: str | None,
    status: str | None,
    event_type: str | None,
    offset: int,
    limit: int,
) -> tuple[list[DeliveryRow], int]:
    statement = _deliveries()
    for column, value in (
        (delivery.c.endpoint_id, endpoint_id),
        (delivery.c.status, status),
        (event.c.type, event_type),
    ):
        if value is not None:
            statement = statement.where(column == value)
    total = await conn.scalar(select(func.count()).select_from(statement.subquery()))
    page = (
        statement.order_by(delivery.c.created_at.desc(), delivery.c.id).offset(offset).limit(limit)
    )
    return [DeliveryRow(*row) for row in (await conn.execute(page)).all()], int(total or 0)


async def get_delivery(conn: AsyncConnection, delivery_id: str) -> DeliveryRow | None:
    row = (await conn.execute(_deliveries().where(delivery.c.id == delivery_id))).first()
    return DeliveryRow(*row) if row is not None else None


async def requeue(
    conn: AsyncConnection,
    *,
    now: datetime,
    delivery_id: str | None = None,
    endpoint_id: str | None = None,
    statuses: Sequence[str] = (DELIVERY_FAILED,),
) -> int:
    """Deliveries in `statuses` (failed ones by default; one, an endpoint's, or all) back to
    pending, due now, with a fresh retry budget."""
    statement = update(delivery).where(delivery.c.status.in_(list(statuses)))
    if delivery_id is not None:
        statement = statement.where(delivery.c.id == delivery_id)
    if endpoint_id is not None:
        statement = statement.where(delivery.c.endpoint_id == endpoint_id)
    result = await conn.execute(
        statement.values(
            status=DELIVERY_PENDING, next_attempt_at=now, retry_from=now, completed_at=None
        )
    )
    return int(result.rowcount)
