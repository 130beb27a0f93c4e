"""SQL for import batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.domain import Protocol
from pool.tables import import_batch


async def open_batch(
    conn: AsyncConnection, *, protocol: Protocol, source: str, actor: str, now: datetime
) -> int:
    statement = (
        insert(import_batch)
        .values(
            protocol=protocol,
            source=source[:255],
            actor=actor,
            imported=0,
            skipped=0,
            created_at=now,
        )
        .returning(import_batch.c.id)
    )
    return int((await conn.execute(statement)).scalar_one())


async def close_batch(conn: AsyncConnection, *, batch_id: int, imported: int, skipped: int) -> None:
    await conn.execute(
        update(import_batch)
        .where(import_batch.c.id == batch_id)
        .values(imported=imported, skipped=skipped)
    )
