"""SQL the alert rules measure with: cheap, bounded counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.counts import count_by_state, kept_counts
from pool.alerts.repository import IS_FIRING
from pool.kit.tables import address, alert, binding, delivery, delivery_attempt, webhook_endpoint
from pool.vocabulary import ARCHIVED, AVAILABLE, IMPORTING, Protocol


async def free_addresses(
    conn: AsyncConnection, *, protocol: Protocol, now: datetime, up_to: int | None = None
) -> int:
    """Free addresses of a protocol: from the kept counts, or counted no further than `up_to`.

    Past the alert's resolve level the exact number changes no decision, and counting a
    million index entries after every bind would cost binds their speed.
    """
    if up_to is None:
        return (await count_by_state(conn, now=now)).get((protocol, AVAILABLE), 0)
    free = (
        select(address.c.id)
        .where(
            address.c.protocol == protocol,
            address.c.status == AVAILABLE,
            or_(address.c.cooldown_until.is_(None), address.c.cooldown_until <= now),
        )
        .limit(up_to)
    )
    return int(await conn.scalar(select(func.count()).select_from(free.subquery())) or 0)


async def usable_addresses(conn: AsyncConnection, *, protocol: Protocol) -> int:
    """Every address of the protocol that is not archived: the pool a percentage refers to
    (an unfinished import's rows are not the pool's yet, nor counted). From the kept counts."""
    kept = await kept_counts(conn)
    return sum(n for (of, status), n in kept.items() if of == protocol and status != ARCHIVED)


async def any_address(conn: AsyncConnection, *, protocol: Protocol) -> bool:
    """Whether any address of the protocol was ever imported, archived ones included (an
    unfinished import's rows not: it may yet leave nothing)."""
    found = await conn.scalar(
        select(
            select(address.c.id)
            .where(address.c.protocol == protocol, address.c.status != IMPORTING)
            .exists()
        )
    )
    return bool(found)


async def binds_since(conn: AsyncConnection, *, protocol: Protocol, since: datetime) -> int:
    count = await conn.scalar(
        select(func.count()).where(binding.c.protocol == protocol, binding.c.bound_at >= since)
    )
    return int(count or 0)


async def failed_attempts_by_endpoint(conn: AsyncConnection, *, since: datetime) -> dict[str, int]:
    """Delivery attempts that did not succeed (no answer, or not a 2xx), per endpoint."""
    failed = or_(delivery_attempt.c.status_code.is_(None), delivery_attempt.c.status_code >= 300)
    rows = await conn.execute(
        select(delivery.c.endpoint_id, func.count())
        .select_from(
            delivery_attempt.join(delivery, delivery.c.id == delivery_attempt.c.delivery_id)
        )
        .where(delivery_attempt.c.attempted_at >= since, failed)
        .group_by(delivery.c.endpoint_id)
    )
    return {str(endpoint): int(n) for endpoint, n in rows.all()}


# A literal, not a parameter, so that PostgreSQL's generic plan and SQLite's planner can use
# the partial index on pending deliveries (see pool.alerts.repository.IS_FIRING).
_PENDING = delivery.c.status == literal_column("'pending'")
# The endpoint's oldest pending delivery that has failed since its retry budget began (a
# requeued one counts from its requeue), and the first of those failed attempts.
_OLDEST_FAILING = (
    select(
        delivery.c.id,
        delivery.c.retry_from,
        delivery.c.attempts,
        delivery.c.last_status_code,
        delivery.c.last_error,
    )
    .where(
        delivery.c.endpoint_id == bindparam("p_endpoint"),
        _PENDING,
        delivery.c.last_attempt_at >= delivery.c.retry_from,
    )
    .order_by(delivery.c.retry_from)
    .limit(1)
    .subquery()
)
ENDPOINT_FAILING_SINCE = select(
    _OLDEST_FAILING,
    select(func.min(delivery_attempt.c.attempted_at))
    .where(
        delivery_attempt.c.delivery_id == _OLDEST_FAILING.c.id,
        delivery_attempt.c.attempted_at >= _OLDEST_FAILING.c.retry_from,
    )
    .scalar_subquery()
    .label("failing_since"),
)


@dataclass(frozen=True, slots=True)
class FailingDelivery:
    delivery_id: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    failing_since: datetime  # its first failed attempt


async def live_endpoints(conn: AsyncConnection) -> list[str]:
    """Endpoints neither deleted nor switched off by the operator."""
    rows = await conn.execute(
        select(webhook_endpoint.c.id).where(
            webhook_endpoint.c.enabled.is_(True), webhook_endpoint.c.deleted_at.is_(None)
        )
    )
    return [str(endpoint_id) for endpoint_id in rows.scalars().all()]


async def oldest_failing_delivery(
    conn: AsyncConnection, *, endpoint_id: str
) -> FailingDelivery | None:
    """The endpoint's oldest undelivered delivery that is failing, by its first failure; None
    when nothing of the endpoint's is failing. It reads the endpoint's pending deliveries
    (an index of them) and one delivery's attempts, whatever the endpoint's history."""
    row = (await conn.execute(ENDPOINT_FAILING_SINCE, {"p_endpoint": endpoint_id})).first()
    if row is None or row.failing_since is None:
        return None
    return FailingDelivery(
        str(row.id), int(row.attempts), row.last_status_code, row.last_error, row.failing_since
    )


_FREE_UP_TO = (
    select(address.c.id)
    .where(
        address.c.protocol == bindparam("p_protocol"),
        address.c.status == AVAILABLE,
        or_(address.c.cooldown_until.is_(None), address.c.cooldown_until <= bindparam("p_now")),
    )
    .limit(bindparam("p_cap"))
    .subquery()
)
_FIRING_EPISODE = (alert.c.subject == bindparam("p_subject"), IS_FIRING)
# Built once, one statement: what runs after a bind is worth a round trip, not three.
_POOL_LOW_PROBE = select(
    select(func.count()).select_from(_FREE_UP_TO).scalar_subquery(),
    select(alert.c.severity).where(*_FIRING_EPISODE).scalar_subquery(),
    select(alert.c.last_fired_at).where(*_FIRING_EPISODE).scalar_subquery(),
)


@dataclass(frozen=True, slots=True)
class PoolLowProbe:
    free: int  # counted no further than the cap asked for
    firing_severity: str | None  # None: no open episode
    last_fired_at: datetime | None

    @property
    def firing(self) -> bool:
        return self.firing_severity is not None


async def pool_low_probe(
    conn: AsyncConnection, *, protocol: Protocol, now: datetime, up_to: int, subject: str
) -> PoolLowProbe:
    """Free addresses counted no further than `up_to`, and `subject`'s open episode if any."""
    parameters = {"p_protocol": protocol, "p_now": now, "p_cap": up_to, "p_subject": subject}
    free, severity, last_fired_at = (await conn.execute(_POOL_LOW_PROBE, parameters)).one()
    return PoolLowProbe(int(free), severity, last_fired_at)
