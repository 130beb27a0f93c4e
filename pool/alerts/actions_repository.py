"""SQL for what operators do to alerts: acknowledge an episode, silence or unsilence a
subject; and the silences the firing code and the notifier consult.

A silence belongs to a subject, though it is written on episodes: on the one the operator
named and on the subject's firing one; an episode opened while its subject is silenced is
opened silenced (`inherit_silences`). The queries the firing code and the notifier run on
every batch and pass name `silenced_until IS NOT NULL`: both databases read the partial index
of the few silenced rows, never every alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import alert, alert_notification, alert_transition
from pool.vocabulary import FIRING

IS_SILENCED = alert.c.silenced_until.is_not(None)
# The transition a still-firing alert's hooks hear when its silence ends.
UNSILENCED = "unsilenced"
SILENCED_NOTIFICATION = "silenced"  # a notification the silence kept from its hook


async def get_alert(conn: AsyncConnection, alert_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(alert).where(alert.c.id == alert_id))).first()
    return dict(row._mapping) if row is not None else None


async def acknowledge_episode(
    conn: AsyncConnection, *, alert_id: int, actor: str, now: datetime
) -> bool:
    """Compare-and-set: True when this call acknowledged the firing, unacknowledged episode."""
    result = await conn.execute(
        update(alert)
        .where(
            alert.c.id == alert_id,
            alert.c.state == FIRING,
            alert.c.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=now, acknowledged_by=actor)
    )
    return result.rowcount == 1


async def silence_subject(
    conn: AsyncConnection, *, alert_id: int, subject: str, until: datetime, actor: str
) -> None:
    """Silence `subject` until `until` (a new silence replaces the one in force): on the named
    episode and on the subject's firing one. Notifications still waiting to be sent for the
    subject are kept from their hooks."""
    await conn.execute(
        update(alert)
        .where(alert.c.subject == subject, or_(alert.c.id == alert_id, alert.c.state == FIRING))
        .values(silenced_until=until, silenced_by=actor)
    )
    of_subject = select(alert_transition.c.id).join(
        alert, alert.c.id == alert_transition.c.alert_id
    )
    await conn.execute(
        update(alert_notification)
        .where(
            alert_notification.c.status == "pending",
            alert_notification.c.transition_id.in_(of_subject.where(alert.c.subject == subject)),
        )
        .values(status=SILENCED_NOTIFICATION, next_attempt_at=None)
    )


async def silenced_until(conn: AsyncConnection, subject: str, now: datetime) -> datetime | None:
    """When the subject's silence in force ends; None when it has none."""
    found = await conn.scalar(
        select(func.max(alert.c.silenced_until)).where(
            alert.c.subject == subject, IS_SILENCED, alert.c.silenced_until > now
        )
    )
    return found if isinstance(found, datetime) else None


async def end_silence(conn: AsyncConnection, *, subject: str, now: datetime) -> None:
    """End the subject's silence now. The notifier lifts it as any silence whose time is
    over (`end_expired_silences`): after it has judged the transitions written until now
    silenced, so none of them reaches a hook late."""
    await conn.execute(
        update(alert)
        .where(alert.c.subject == subject, IS_SILENCED, alert.c.silenced_until > now)
        .values(silenced_until=now)
    )


async def end_expired_silences(conn: AsyncConnection, *, now: datetime) -> int:
    """Lift every silence whose time is over (the notifier's pass); the firing episodes among
    them are announced to the hooks again. Returns how many episodes it lifted.

    Not while a transition of the subject waits to be dispatched (another notifier may hold
    it): that one was written during the silence, and must be judged silenced first."""
    other = alert.alias("other")
    waiting = (
        select(alert_transition.c.id)
        .join(other, other.c.id == alert_transition.c.alert_id)
        .where(alert_transition.c.dispatched_at.is_(None), other.c.subject == alert.c.subject)
    )
    expired = select(alert.c.id).where(
        IS_SILENCED, alert.c.silenced_until <= now, ~waiting.exists()
    )
    ids = [int(i) for i in (await conn.scalars(expired)).all()]
    if not ids:
        return 0
    # The firing ones first: once lifted, they no longer look expired.
    firing = select(alert.c.id).where(alert.c.id.in_(ids), alert.c.state == FIRING)
    await _announce_unsilenced(conn, firing, now)
    await conn.execute(
        update(alert)
        .where(alert.c.id.in_(ids), alert.c.silenced_until <= now)
        .values(silenced_until=None, silenced_by=None)
    )
    return len(ids)


async def _announce_unsilenced(conn: AsyncConnection, episodes: Any, now: datetime) -> None:
    """An `unsilenced` transition for each episode, with the alert as it is now."""
    snapshot = select(
        alert.c.id, literal(UNSILENCED), literal(now, alert_transition.c.at.type), alert.c.severity
    ).add_columns(alert.c.value, alert.c.details)
    await conn.execute(
        insert(alert_transition).from_select(
            ["alert_id", "transition", "at", "severity", "value", "details"],
            snapshot.where(alert.c.id.in_(episodes)),
        )
    )


async def has_expired_silence(conn: AsyncConnection, *, now: datetime) -> bool:
    expired = select(alert.c.id).where(IS_SILENCED, alert.c.silenced_until <= now)
    return bool(await conn.scalar(select(expired.exists())))


async def silences(conn: AsyncConnection) -> dict[str, tuple[datetime, str | None]]:
    """Subject → the end of its latest silence (ended or not yet lifted) and who set it.

    All of them at once: silences are an operator's, so few, and one read of their partial
    index is cheaper than looking each subject of a batch up (a catch-up fires thousands)."""
    rows = await conn.execute(
        select(alert.c.subject, alert.c.silenced_until, alert.c.silenced_by).where(IS_SILENCED)
    )
    found: dict[str, tuple[datetime, str | None]] = {}
    for subject, until, by in rows.all():
        if subject not in found or until > found[subject][0]:
            found[str(subject)] = (until, by)
    return found


async def inherit_silences(conn: AsyncConnection, subjects: Sequence[str], now: datetime) -> None:
    """The firing episodes of `subjects` just opened take their subject's silence in force:
    a flapping alert stays quiet."""
    in_force = {s: v for s, v in (await silences(conn)).items() if v[0] > now}
    for subject in set(subjects) & in_force.keys():
        until, by = in_force[subject]
        await conn.execute(
            update(alert)
            .where(
                alert.c.subject == subject,
                alert.c.state == FIRING,
                alert.c.silenced_until.is_(None),
            )
            .values(silenced_until=until, silenced_by=by)
        )
