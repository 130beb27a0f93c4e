"""SQL for the database's own record: which network it belongs to."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import api_key, instance
from pool.vocabulary import Network

_THE_ROW = 1  # the table holds one row (a CHECK says so)


async def ping(conn: AsyncConnection) -> None:
    """The smallest round trip: raises when the database cannot answer."""
    await conn.execute(text("SELECT 1"))


async def recorded_network(conn: AsyncConnection) -> Network | None:
    value = (await conn.execute(select(instance.c.network))).scalar_one_or_none()
    return cast(Network | None, value)  # a CHECK keeps it to the vocabulary


async def record_network(conn: AsyncConnection, *, network: Network, now: datetime) -> bool:
    """False when another process recorded one first (its row stays: it is never overwritten)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(instance)
        .values(id=_THE_ROW, network=network, created_at=now)
        .on_conflict_do_nothing(index_elements=[instance.c.id])
        .returning(instance.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def key_prefixes(conn: AsyncConnection, *, active: bool) -> set[str]:
    """The distinct network prefixes (`pk_test_`, `pk_live_`) of the active keys, or of all."""
    network_prefix = func.substr(api_key.c.prefix, 1, 8)
    statement = select(network_prefix).distinct()
    if active:
        statement = statement.where(api_key.c.revoked_at.is_(None))
    return set((await conn.execute(statement)).scalars())
