"""SQL for the outbox (`event`) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.tables import audit_log, event

_INSERT_EVENT = insert(event)  # built once: every bind and unbind writes one


async def insert_event(
    conn: AsyncConnection, *, event_id: str, type: str, data: dict[str, Any], now: datetime
) -> None:
    values = {"id": event_id, "type": type, "data": data, "created_at": now}
    await conn.execute(_INSERT_EVENT, values)


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
