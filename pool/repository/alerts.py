"""SQL for alert records: one open (firing) episode per subject."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.tables import alert, alert_transition


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
    """Open an episode for `subject`, or refresh the open one. True when it is new.

    A new episode also writes its `fired` transition, in the caller's transaction: the hooks
    hear of it exactly once, whichever part of addrpool raised it.
    """
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
    result = await conn.execute(
        insert(alert)
        .values(
            kind=kind,
            subject=subject,
            severity=severity,
            state="firing",
            value=value,
            details=details,
            first_fired_at=now,
            last_fired_at=now,
        )
        .returning(alert.c.id)
    )
    await _transition(conn, alert_id=int(result.scalar_one()), transition="fired", now=now)
    return True


async def resolve_alert(
    conn: AsyncConnection, *, subject: str, now: datetime, value: str | None = None
) -> bool:
    """Close the open episode of `subject`; True when there was one."""
    values: dict[str, Any] = {"state": "resolved", "resolved_at": now}
    if value is not None:
        values["value"] = value
    result = await conn.execute(
        update(alert)
        .where(alert.c.subject == subject, alert.c.state == "firing")
        .values(**values)
        .returning(alert.c.id)
    )
    closed = result.scalar_one_or_none()
    if closed is None:
        return False
    await _transition(conn, alert_id=int(closed), transition="resolved", now=now)
    return True


async def _transition(
    conn: AsyncConnection, *, alert_id: int, transition: str, now: datetime
) -> None:
    await conn.execute(
        insert(alert_transition).values(alert_id=alert_id, transition=transition, at=now)
    )


async def firing_subjects(conn: AsyncConnection, subjects: list[str]) -> set[str]:
    rows = await conn.execute(
        select(alert.c.subject).where(alert.c.subject.in_(subjects), alert.c.state == "firing")
    )
    return {str(s) for s in rows.scalars().all()}


async def list_alerts(
    conn: AsyncConnection, *, state: str | None = None, offset: int = 0, limit: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of alerts, newest first, and how many there are in all."""
    statement = select(alert).order_by(alert.c.last_fired_at.desc(), alert.c.id.desc())
    counting = select(func.count()).select_from(alert)
    if state is not None:
        statement = statement.where(alert.c.state == state)
        counting = counting.where(alert.c.state == state)
    rows = (await conn.execute(statement.offset(offset).limit(limit))).all()
    return [dict(row._mapping) for row in rows], int(await conn.scalar(counting) or 0)


async def firing_by_kind(conn: AsyncConnection, kind: str) -> set[str]:
    rows = await conn.execute(
        select(alert.c.subject).where(alert.c.kind == kind, alert.c.state == "firing")
    )
    return {str(s) for s in rows.scalars().all()}
