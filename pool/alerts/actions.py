"""What an operator does to an alert (docs/operations.md, Alerts): acknowledge its episode,
silence its subject for a while, or lift that silence. Each action owns its transaction and
writes an audit record of who did it and why; each returns the alert as it is after it.

- An acknowledgement is the episode's: "someone is on it". It changes nothing the hooks
  hear, and a new episode of the subject starts unacknowledged.
- A silence is the subject's, until its time ends: the hooks hear nothing of the subject
  meanwhile (fired, escalated, de-escalated, resolved — a flapping alert stays quiet), the
  alert still shows everywhere. When it ends, by its time or by `unsilence`, a subject still
  firing is announced once more (`unsilenced`); one that resolved meanwhile is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts import actions_repository as repo
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.db import Database
from pool.kit.errors import Conflict, NotFound, ValidationFailed
from pool.vocabulary import RESOLVED
from pool.webhooks.events_repository import insert_audit

REASON_MAX = 500
SILENCE_MINUTES_MIN = 1
SILENCE_MINUTES_MAX = 43_200  # 30 days: a longer silence is a rule to change, not an alert


async def acknowledge(db: Database, alert_id: int, actor: str, reason: str) -> dict[str, Any]:
    """Acknowledge a firing episode. 404 unknown; 409 resolved or already acknowledged."""
    why = checked_reason(reason)
    now = utc_now()
    async with db.write() as conn:
        if not await repo.acknowledge_episode(conn, alert_id=alert_id, actor=actor, now=now):
            found = await _found(conn, alert_id)
            if found["state"] == RESOLVED:
                raise Conflict(
                    f"Alert {alert_id} is resolved: there is nothing to acknowledge",
                    code="ALERT_RESOLVED",
                )
            raise Conflict(
                f"Alert {alert_id} was acknowledged by {found['acknowledged_by']} already",
                code="ALERT_ACKNOWLEDGED",
            )
        await _audit(conn, actor, "alert.acknowledge", alert_id, {"reason": why}, now)
        return await _found(conn, alert_id)


async def silence(
    db: Database, alert_id: int, actor: str, reason: str, minutes: int
) -> dict[str, Any]:
    """Silence the alert's subject for `minutes` from now (replacing a silence in force).
    A resolved alert may be silenced: its subject's next episodes open silenced. 404 unknown."""
    why = checked_reason(reason)
    checked_minutes(minutes)
    now = utc_now()
    until = now + timedelta(minutes=minutes)
    async with db.write() as conn:
        found = await _found(conn, alert_id)
        await repo.silence_subject(
            conn, alert_id=alert_id, subject=found["subject"], until=until, actor=actor
        )
        details = {"reason": why, "minutes": minutes, "until": isoformat_z(until)}
        await _audit(conn, actor, "alert.silence", alert_id, details, now)
        return await _found(conn, alert_id)


async def unsilence(db: Database, alert_id: int, actor: str, reason: str) -> dict[str, Any]:
    """Lift the silence of the alert's subject now. 404 unknown; 409 not silenced."""
    why = checked_reason(reason)
    now = utc_now()
    async with db.write() as conn:
        found = await _found(conn, alert_id)
        until = await repo.silenced_until(conn, found["subject"], now)
        if until is None:
            raise Conflict(f"Alert {alert_id} is not silenced", code="ALERT_NOT_SILENCED")
        await repo.end_silence(conn, subject=found["subject"], now=now)
        details = {"reason": why, "wasSilencedUntil": isoformat_z(until)}
        await _audit(conn, actor, "alert.unsilence", alert_id, details, now)
        return await _found(conn, alert_id)


def checked_reason(reason: str) -> str:
    """Every action says why: 1 to 500 characters, blanks around it dropped."""
    why = reason.strip() if isinstance(reason, str) else ""
    if not why:
        raise ValidationFailed("reason is required: say why")
    if len(why) > REASON_MAX:
        raise ValidationFailed(f"reason is longer than {REASON_MAX} characters")
    return why


def checked_minutes(minutes: int) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise ValidationFailed("minutes must be a whole number")
    if not SILENCE_MINUTES_MIN <= minutes <= SILENCE_MINUTES_MAX:
        raise ValidationFailed(
            f"minutes must be between {SILENCE_MINUTES_MIN} and {SILENCE_MINUTES_MAX} (30 days)"
        )


async def _found(conn: AsyncConnection, alert_id: int) -> dict[str, Any]:
    found = await repo.get_alert(conn, alert_id)
    if found is None:
        raise NotFound(f"Alert {alert_id} not found", code="ALERT_NOT_FOUND")
    return found


async def _audit(
    conn: AsyncConnection,
    actor: str,
    action: str,
    alert_id: int,
    details: dict[str, Any],
    now: datetime,
) -> None:
    await insert_audit(
        conn, actor=actor, action=action, subject=str(alert_id), details=details, now=now
    )
