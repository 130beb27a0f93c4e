"""SQL for the console's record pages: a delivery's attempts, the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import audit_log, delivery_attempt

RESPONSE_EXCERPT = 300  # characters of a receiver's answer shown


@dataclass(frozen=True, slots=True)
class Attempt:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None


async def attempts_of(conn: AsyncConnection, delivery_id: str) -> list[Attempt]:
    rows = await conn.execute(
        select(
            delivery_attempt.c.attempted_at,
            delivery_attempt.c.status_code,
            delivery_attempt.c.latency_ms,
            delivery_attempt.c.error,
            func.substr(delivery_attempt.c.response_body, 1, RESPONSE_EXCERPT),
        )
        .where(delivery_attempt.c.delivery_id == delivery_id)
        .order_by(delivery_attempt.c.attempted_at, delivery_attempt.c.id)
    )
    return [Attempt(*row) for row in rows.all()]


async def audit_page(
    conn: AsyncConnection, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the audit log, newest first, and how many records there are."""
    rows = await conn.execute(
        select(audit_log)
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    total = await conn.scalar(select(func.count()).select_from(audit_log))
    return [dict(row._mapping) for row in rows.all()], int(total or 0)
