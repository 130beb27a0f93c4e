"""SQL for the console's sessions: only the SHA-256 of a session's cookie is stored, as only
the SHA-256 of an API key is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import api_key, console_session


@dataclass(frozen=True, slots=True)
class StoredSession:
    key_id: int
    key_name: str
    key_scopes: frozenset[str]
    csrf: str
    expires_at: datetime


async def insert_session(
    conn: AsyncConnection,
    *,
    token_hash: str,
    key_id: int,
    csrf: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        insert(console_session).values(
            id=token_hash,
            api_key_id=key_id,
            csrf=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )


async def live_session(
    conn: AsyncConnection, *, token_hash: str, now: datetime
) -> StoredSession | None:
    """The session, if it has not expired and its key is not revoked: revoking the key ends
    its sessions at once."""
    statement = (
        select(
            api_key.c.id,
            api_key.c.name,
            api_key.c.scopes,
            console_session.c.csrf,
            console_session.c.expires_at,
        )
        .select_from(console_session.join(api_key, api_key.c.id == console_session.c.api_key_id))
        .where(
            console_session.c.id == token_hash,
            console_session.c.expires_at > now,
            api_key.c.revoked_at.is_(None),
        )
    )
    row = (await conn.execute(statement)).first()
    if row is None:
        return None
    return StoredSession(row[0], row[1], frozenset(row[2].split()), row[3], row[4])


async def touch_session(conn: AsyncConnection, *, token_hash: str, now: datetime) -> None:
    await conn.execute(
        update(console_session).where(console_session.c.id == token_hash).values(last_seen_at=now)
    )


async def delete_session(conn: AsyncConnection, *, token_hash: str) -> int:
    result = await conn.execute(delete(console_session).where(console_session.c.id == token_hash))
    return int(result.rowcount or 0)


async def delete_expired(conn: AsyncConnection, *, now: datetime) -> None:
    await conn.execute(delete(console_session).where(console_session.c.expires_at <= now))
