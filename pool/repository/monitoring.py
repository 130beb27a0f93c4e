"""SQL the alert rules measure with: cheap, bounded counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.domain import Protocol
from pool.repository.alerts import IS_FIRING
from pool.tables import address, alert, binding, delivery, delivery_attempt


async def free_addresses(
    conn: AsyncConnection, *, protocol: Protocol, now: datetime, up_to: int | None = None
) -> int:
    """Free addresses of a protocol, counted no further than `up_to`.

    Past the alert's resolve level the exact number changes no decision, and counting a
    million index entries after every bind would cost binds their speed.
    """
    free = (
        select(address.c.id)
        .where(
            address.c.protocol == protocol,
            address.c.status == "available",
            or_(address.c.cooldown_until.is_(None), address.c.cooldown_until <= now),
        )
        .limit(up_to)
    )
    return int(await conn.scalar(select(func.count()).select_from(free.subquery())) or 0)


async def usable_addresses(conn: AsyncConnection, *, protocol: Protocol) -> int:
    """Every address of the protocol that is not archived: the pool a percentage refers to."""
    count = await conn.scalar(
        select(func.count()).where(address.c.protocol == protocol, address.c.status != "archived")
    )
    return int(count or 0)


async def any_address(conn: AsyncConnection, *, protocol: Protocol) -> bool:
    """Whether any address of the protocol was ever imported, archived ones included."""
    found = await conn.scalar(
        select(select(address.c.id).where(address.c.protocol == protocol).exists())
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


_FREE_UP_TO = (
    select(address.c.id)
    .where(
        address.c.protocol == bindparam("p_protocol"),
        address.c.status == "available",
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
