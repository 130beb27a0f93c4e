"""Binds counted by UTC hour and in time ranges, per protocol: what the pool summary's bind
rate and the console's chart read, each through the index on (protocol, bound_at)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import binding
from pool.vocabulary import PROTOCOLS, Protocol

# One range: [start, end); end None: up to now and beyond.
Range = tuple[datetime, datetime | None]


async def binds_by_hour(
    conn: AsyncConnection, *, since: datetime, until: datetime
) -> dict[tuple[Protocol, datetime], int]:
    """(protocol, the hour's start) → binds, for the hours in [since, until) that had any."""
    if conn.dialect.name == "postgresql":
        hour = func.to_char(func.timezone("UTC", binding.c.bound_at), 'YYYY-MM-DD"T"HH24')
    else:  # SQLite keeps UTC moments as text: "YYYY-MM-DD HH:MM:SS…"
        hour = func.substr(binding.c.bound_at, 1, 13)
    statement = (
        select(binding.c.protocol, hour, func.count())
        # Every protocol named: the index's ranges are then walked, never the whole index.
        .where(binding.c.protocol.in_(PROTOCOLS), binding.c.bound_at >= since)
        .where(binding.c.bound_at < until)
        .group_by(binding.c.protocol, hour)
    )
    return {
        (protocol, _hour_start(str(label))): int(n)
        for protocol, label, n in (await conn.execute(statement)).all()
    }


async def binds_in_ranges(
    conn: AsyncConnection, ranges: Sequence[Range]
) -> dict[tuple[Protocol, int], int]:
    """(protocol, the range's place in `ranges`) → binds, every one in one round trip."""
    counts = [
        select(func.count())
        .where(binding.c.protocol == protocol, _within(start, end))
        .scalar_subquery()
        for protocol in PROTOCOLS
        for start, end in ranges
    ]
    if not counts:
        return {}
    row = (await conn.execute(select(*counts))).one()
    keys = [(protocol, n) for protocol in PROTOCOLS for n in range(len(ranges))]
    return {key: int(value or 0) for key, value in zip(keys, row, strict=True)}


def _within(start: datetime, end: datetime | None) -> ColumnElement[bool]:
    if end is None:
        return binding.c.bound_at >= start
    return and_(binding.c.bound_at >= start, binding.c.bound_at < end)


def _hour_start(label: str) -> datetime:
    return datetime.fromisoformat(label.replace(" ", "T") + ":00:00").replace(tzinfo=UTC)
