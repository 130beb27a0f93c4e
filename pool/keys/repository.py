"""SQL for API keys. Only the SHA-256 of a key is ever stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import api_key

ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    key_hash: str = ""

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    @property
    def actor(self) -> str:
        return f"key:{self.id}"


def _to_key(row: Any) -> ApiKey:
    key_id, name, prefix, scopes, created_at, last_used_at, revoked_at, key_hash = row
    return ApiKey(
        key_id,
        name,
        prefix,
        frozenset(scopes.split()),
        created_at,
        last_used_at,
        revoked_at,
        key_hash,
    )


_COLUMNS = (
    api_key.c.id,
    api_key.c.name,
    api_key.c.prefix,
    api_key.c.scopes,
    api_key.c.created_at,
    api_key.c.last_used_at,
    api_key.c.revoked_at,
    api_key.c.key_hash,
)


async def insert_key(
    conn: AsyncConnection,
    *,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: str,
    now: datetime,
) -> int:
    statement = (
        insert(api_key)
        .values(name=name, prefix=prefix, key_hash=key_hash, scopes=scopes, created_at=now)
        .returning(api_key.c.id)
    )
    return int((await conn.execute(statement)).scalar_one())


async def find_by_hash(conn: AsyncConnection, *, key_hash: str) -> ApiKey | None:
    statement = select(*_COLUMNS).where(api_key.c.key_hash == key_hash)
    row = (await conn.execute(statement)).first()
    return _to_key(row) if row else None


async def all_keys(conn: AsyncConnection) -> list[ApiKey]:
    rows = (await conn.execute(select(*_COLUMNS).order_by(api_key.c.id))).all()
    return [_to_key(row) for row in rows]


async def revoke(conn: AsyncConnection, *, id_or_prefix: str, now: datetime) -> list[int]:
    matches = or_(api_key.c.prefix == id_or_prefix, api_key.c.name == id_or_prefix)
    if id_or_prefix.isdigit():
        matches = or_(matches, api_key.c.id == int(id_or_prefix))
    statement = (
        update(api_key)
        .where(matches, api_key.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(api_key.c.id)
    )
    return [int(row[0]) for row in (await conn.execute(statement)).all()]


async def touch(conn: AsyncConnection, *, key_id: int, now: datetime) -> None:
    await conn.execute(update(api_key).where(api_key.c.id == key_id).values(last_used_at=now))
