"""PostgreSQL session advisory locks: one holder at a time across every process on a database.

A session lock is held by the connection that took it and released when that connection
closes — which is what makes a crashed holder's lock free for the next worker. So each lock is
taken on a connection of its own, in autocommit mode (no transaction to end it early), and kept
for as long as the work it guards. SQLite has one writing process: nothing to lock there.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.db import Database


async def try_lock(conn: AsyncConnection, key: int) -> bool:
    """Take the lock if no other session holds it; never waits."""
    return bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))


async def holds_lock(conn: AsyncConnection, key: int) -> bool:
    """Whether this connection's session still holds the lock (a bigint key is split into
    classid, the high 32 bits, and objid, the low ones)."""
    held = await conn.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND objsubid = 1"
            " AND ((classid::bigint << 32) | objid::bigint) = :key)"
        ),
        {"key": key},
    )
    return bool(held)


async def unlock(conn: AsyncConnection, key: int) -> None:
    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextlib.asynccontextmanager
async def try_holding(db: Database, key: int) -> AsyncIterator[bool]:
    """Yields whether this process holds the lock, for the block's duration (always True on
    SQLite, where one process runs); released at the end of the block if it was taken."""
    if db.is_sqlite:
        yield True
        return
    async with db.session() as conn:
        held = await try_lock(conn, key)
        try:
            yield held
        finally:
            if held:
                await unlock(conn, key)
