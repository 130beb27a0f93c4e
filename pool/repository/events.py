"""SQL for the outbox (`event`) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.tables import audit_log, event


async def insert_event(
    conn: AsyncConnection, *, event_id: str, type: str, data: dict[str, Any], now: datetime
) -> None:
    await conn.execute(insert(event).values(id=event_id, type=type, data=data, created_at=now))


async def insert_audit(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None,
    now: datetime,
) -> None:
    await conn.execute(
        insert(audit_log).values(
            at=now, actor=actor, action=action, subject=subject, details=details
        )
    )
