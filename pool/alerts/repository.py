"""SQL for alert records: one open (firing) episode per subject."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts.actions_repository import inherit_silences
from pool.kit.bulk import asyncpg_connection, in_values, insert_rows, json_insert
from pool.kit.tables import alert, alert_transition
from pool.vocabulary import FIRING, RESOLVED, AlertKind

IN_CHUNK = 1000  # bounded IN lists: PostgreSQL takes at most 32,767 parameters a statement
# A literal, not a parameter: PostgreSQL's generic plan of a prepared statement (asyncpg
# prepares them all) can use the partial index on firing subjects only when the condition is
# written out. With `state = $2` it scanned every alert ever raised, slower with every alert
# (docs/performance.md).
IS_FIRING = alert.c.state == literal_column("'firing'")


# In rising order: a firing episode whose severity moves up escalates, down de-escalates.
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Firing:
    """One alert to fire (see `raise_alert`), or as a transition left it."""

    kind: str
    subject: str
    severity: str
    value: str | None
    details: dict[str, Any] | None


async def fire_alert(
    conn: AsyncConnection,
    *,
    kind: AlertKind,
    subject: str,
    severity: str,
    value: str | None,
    details: dict[str, Any] | None,
    now: datetime,
) -> bool:
    """Open an episode for `subject`, or refresh the open one (see `raise_alert`). True when
    it is new."""
    firing = Firing(kind, subject, severity, value, details)
    return await raise_alert(conn, firing=firing, now=now) == "fired"


async def raise_alert(
    conn: AsyncConnection, *, firing: Firing, now: datetime, may_open: bool = True
) -> str | None:
    """Open an episode ("fired"), or refresh the open one: its value, details and
    `last_fired_at` follow the latest measure, and a change of severity is a transition of
    its own ("escalated" or "deescalated"). Returns the transition written, None for a plain
    refresh (the hooks hear of transitions only).

    `may_open=False` refreshes only: a measure taken while the episode was open must not
    open another if it closed in between.

    The transition is written in the caller's transaction: the hooks hear of it exactly once,
    whichever part of addrpool raised it.
    """
    current = (
        await conn.execute(
            select(alert.c.id, alert.c.severity).where(alert.c.subject == firing.subject, IS_FIRING)
        )
    ).first()
    if current is None:
        return await _open(conn, firing, now) if may_open else None
    # A measure older than the episode's last write is stale (two processes evaluating at
    # once): it must not undo a newer value, nor flap the severity back and forth.
    refreshed = (
        update(alert)
        .where(alert.c.id == current.id, alert.c.last_fired_at <= now)
        .values(last_fired_at=now, value=firing.value, details=firing.details)
    )
    if firing.severity == current.severity:
        await conn.execute(refreshed)
        return None
    # Compare-and-set: of two processes that see the same change, one writes its transition.
    changed = await conn.execute(
        refreshed.where(alert.c.severity == current.severity).values(severity=firing.severity)
    )
    if changed.rowcount != 1:
        return None
    rising = SEVERITIES.index(firing.severity) > SEVERITIES.index(current.severity)
    transition = "escalated" if rising else "deescalated"
    await _transition(conn, alert_id=int(current.id), transition=transition, now=now, as_of=firing)
    return transition


async def _open(conn: AsyncConnection, firing: Firing, now: datetime) -> str:
    result = await conn.execute(
        insert(alert).values(**_new_episode(firing, now)).returning(alert.c.id)
    )
    alert_id = int(result.scalar_one())
    await inherit_silences(conn, [firing.subject], now)
    await _transition(conn, alert_id=alert_id, transition="fired", now=now, as_of=firing)
    return "fired"


# Built once: a catch-up scan fires thousands (one per unattributed deposit).
_REFRESH = (
    update(alert)
    .where(alert.c.subject == bindparam("b_subject"), IS_FIRING)
    .values(
        last_fired_at=bindparam("b_now"), value=bindparam("b_value"), details=bindparam("b_details")
    )
)
_OPEN_CONFLICT = "ON CONFLICT (subject) WHERE state = 'firing' DO NOTHING"


async def fire_alerts(conn: AsyncConnection, *, firings: Sequence[Firing], now: datetime) -> None:
    """`fire_alert` for many subjects in a few statements: one lookup of the open episodes,
    one UPDATE for those, one INSERT for the rest.

    The insert skips a subject whose episode opened in between (the unique firing-subject
    index): that one was just fired, which is all this promises. An open episode keeps its
    severity: each kind fired here has one (escalation is `raise_alert`'s).
    """
    open_now = await firing_subjects(conn, [f.subject for f in firings])
    refresh = [f for f in firings if f.subject in open_now]
    fresh = [f for f in firings if f.subject not in open_now]
    if refresh:
        await conn.execute(
            _REFRESH,
            [
                {"b_subject": f.subject, "b_now": now, "b_value": f.value, "b_details": f.details}
                for f in refresh
            ],
        )
    if not fresh:
        return
    episodes = [_new_episode(f, now) for f in fresh]
    if conn.dialect.name == "postgresql":
        await _open_with_transitions(conn, episodes, now)
    else:
        await insert_rows(conn, alert, episodes, suffix=_OPEN_CONFLICT)  # see pool.kit.bulk
        await _transitions_of_opened(conn, [f.subject for f in fresh], now)
    await inherit_silences(conn, [f.subject for f in fresh], now)


async def firing_subjects(conn: AsyncConnection, subjects: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(subjects), IN_CHUNK):
        chunk = subjects[start : start + IN_CHUNK]
        statement = select(alert.c.subject).where(
            in_values(conn.dialect.name, alert.c.subject, chunk), IS_FIRING
        )
        found.update((await conn.scalars(statement)).all())
    return found


def _new_episode(firing: Firing, now: datetime) -> dict[str, Any]:
    return {
        "kind": firing.kind,
        "subject": firing.subject,
        "severity": firing.severity,
        "state": FIRING,
        "value": firing.value,
        "details": firing.details,
        "first_fired_at": now,
        "last_fired_at": now,
    }


async def _open_with_transitions(
    conn: AsyncConnection, episodes: Sequence[dict[str, Any]], now: datetime
) -> None:
    """PostgreSQL: the episodes as one JSON parameter (see pool.kit.bulk.json_insert),
    and the `fired` transitions of those the insert opened, from the ids it returns — one
    statement for a batch, where one INSERT per alert was a visible share of a catch-up range
    (docs/performance.md)."""
    opening, records = json_insert(conn, alert, episodes, suffix=_OPEN_CONFLICT, returning="id")
    statement = (
        f"WITH opened AS ({opening}) "  # noqa: S608 - our own statement, values bound
        "INSERT INTO alert_transition (alert_id, transition, at) "
        "SELECT id, 'fired', $2::timestamptz FROM opened"
    )
    await (await asyncpg_connection(conn)).execute(statement, records, now)


async def _transitions_of_opened(
    conn: AsyncConnection, subjects: Sequence[str], now: datetime
) -> None:
    """The `fired` transitions of the episodes this batch opened (those first fired now and
    without one yet): the hooks hear of batch-fired alerts as of any other."""
    # NOT EXISTS by the indexed alert id: a NOT IN over every transition ever written read
    # the whole table for each batch, slower with every alert the pool has had.
    told = select(alert_transition.c.id).where(alert_transition.c.alert_id == alert.c.id)
    for start in range(0, len(subjects), IN_CHUNK):
        opened = select(
            alert.c.id, text("'fired'"), bindparam("at", now, type_=alert.c.first_fired_at.type)
        ).where(
            in_values(conn.dialect.name, alert.c.subject, subjects[start : start + IN_CHUNK]),
            IS_FIRING,
            alert.c.first_fired_at == now,
            ~told.exists(),
        )
        await conn.execute(
            insert(alert_transition).from_select(["alert_id", "transition", "at"], opened)
        )


async def resolve_alert(
    conn: AsyncConnection, *, subject: str, now: datetime, value: str | None = None
) -> bool:
    """Close the open episode of `subject`; True when there was one."""
    values: dict[str, Any] = {"state": RESOLVED, "resolved_at": now}
    if value is not None:
        values["value"] = value
    result = await conn.execute(
        update(alert)
        .where(alert.c.subject == subject, IS_FIRING)
        .values(**values)
        .returning(alert.c.id, alert.c.kind, alert.c.severity, alert.c.value, alert.c.details)
    )
    closed = result.first()
    if closed is None:
        return False
    as_of = Firing(closed.kind, subject, closed.severity, closed.value, closed.details)
    await _transition(conn, alert_id=int(closed.id), transition="resolved", now=now, as_of=as_of)
    return True


async def _transition(
    conn: AsyncConnection, *, alert_id: int, transition: str, now: datetime, as_of: Firing
) -> None:
    """A transition, with the alert as it left it (a hook told later hears of that)."""
    await conn.execute(
        insert(alert_transition).values(
            alert_id=alert_id,
            transition=transition,
            at=now,
            severity=as_of.severity,
            value=as_of.value,
            details=as_of.details,
        )
    )


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


async def firing_by_kind(conn: AsyncConnection, kind: AlertKind) -> set[str]:
    rows = await conn.execute(select(alert.c.subject).where(alert.c.kind == kind, IS_FIRING))
    return {str(s) for s in rows.scalars().all()}


async def count_firing_by_kind(conn: AsyncConnection) -> dict[str, int]:
    """Kind → how many of its episodes fire now: the metrics' alert gauge.

    Every kind seen, firing or not: a resolved kind reads 0 instead of vanishing, so
    `sum(addrpool_alerts_firing)` stays defined. Alert rows are episodes, so few.
    """
    firing = func.count().filter(alert.c.state == FIRING)
    statement = select(alert.c.kind, firing).group_by(alert.c.kind)
    return {kind: int(n) for kind, n in (await conn.execute(statement))}


async def firing_details(conn: AsyncConnection, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(subject, details) of each of the kind's episodes firing now."""
    rows = await conn.execute(
        select(alert.c.subject, alert.c.details).where(alert.c.kind == kind, IS_FIRING)
    )
    return [(str(subject), dict(details or {})) for subject, details in rows.all()]
