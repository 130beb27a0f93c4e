"""SQL for alert records: one open (firing) episode per subject."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.tables import alert


async def fire_alert(
    conn: AsyncConnection,
    *,
    kind: str,
    subject: str,
    severity: str,
    value: str | None,
    details: dict[str, Any] | None,
    now: datetime,
) -> bool:
    """Open an episode for `subject`, or refresh the open one. True when it is new."""
    firing = await conn.scalar(
        select(alert.c.id).where(alert.c.subject == subject, alert.c.state == "firing")
    )
    if firing is not None:
        await conn.execute(
            update(alert)
            .where(alert.c.id == firing)
            .values(last_fired_at=now, value=value, details=details)
        )
        return False
    await conn.execute(
        insert(alert).values(
            kind=kind,
            subject=subject,
            severity=severity,
            state="firing",
            value=value,
            details=details,
            first_fired_at=now,
            last_fired_at=now,
        )
    )
    return True


async def resolve_alert(conn: AsyncConnection, *, subject: str, now: datetime) -> bool:
    """Close the open episode of `subject`; True when there was one."""
    result = await conn.execute(
        update(alert)
        .where(alert.c.subject == subject, alert.c.state == "firing")
        .values(state="resolved", resolved_at=now)
    )
    return result.rowcount == 1


async def list_alerts(conn: AsyncConnection, *, state: str | None = None) -> list[dict[str, Any]]:
    statement = select(alert).order_by(alert.c.last_fired_at.desc(), alert.c.id.desc())
    if state is not None:
        statement = statement.where(alert.c.state == state)
    return [dict(row._mapping) for row in (await conn.execute(statement)).all()]
