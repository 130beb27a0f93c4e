"""SQL for the outbox (`event`) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.bulk import asyncpg_connection, insert_rows
from pool.kit.db import dumps_json
from pool.kit.sqlite_trip import Trip, TripStatement
from pool.kit.tables import audit_log, event
from pool.kit.types import UTCDateTime

INSERT_EVENT = insert(event).returning(event.c.seq)  # built once: every bind writes one

_NEW_DELIVERY_ID = {
    "postgresql": "'dlv_' || substr(md5(random()::text || clock_timestamp()::text "
    "|| s.endpoint_id), 1, 24)",
    "sqlite": "'dlv_' || lower(hex(randomblob(12)))",
}


def fan_out(dialect: str, *, events: str, now: str, where: str = "") -> str:
    """The one statement that writes deliveries: one pending delivery per live endpoint
    subscribed to each event's type, in the event's own transaction (Invariant 8).

    `events` is a row source aliased `ev` with the events' `seq` and `type` (the event table,
    or a CTE that inserted them); `where` narrows it (`AND …`); `now` is the placeholder of the
    moment. The id is made by the database so that one statement serves any number of
    endpoints.
    """
    return f"""INSERT INTO delivery (id, event_seq, endpoint_id, status, attempts, next_attempt_at,
                      retry_from, created_at)
SELECT {_NEW_DELIVERY_ID[dialect]}, ev.seq, s.endpoint_id, 'pending', 0, {now}, {now}, {now}
  FROM {events}
  JOIN webhook_subscription s ON s.event_type = ev.type
  JOIN webhook_endpoint e ON e.id = s.endpoint_id
 WHERE e.enabled AND e.deleted_at IS NULL{where}"""  # noqa: S608 - constant SQL, values bound


INSERT_DELIVERIES = {
    dialect: text(
        fan_out(dialect, events="event ev", now=":now", where=" AND ev.seq = :seq")
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    for dialect in _NEW_DELIVERY_ID
}


async def insert_event(
    conn: AsyncConnection,
    *,
    event_id: str,
    type: str,
    data: dict[str, Any],
    now: datetime,
    to_subscribers: bool = True,
) -> int:
    """Write the event and its deliveries to the endpoints subscribed to its type (none with
    `to_subscribers=False`: the caller writes its own); returns the event's sequence number."""
    values = {"id": event_id, "type": type, "data": data, "created_at": now}
    seq = int((await conn.execute(INSERT_EVENT, values)).scalar_one())
    if to_subscribers:
        params = {"seq": seq, "now": now}
        await conn.execute(INSERT_DELIVERIES[conn.dialect.name], params)
    return seq


# The same two statements for SQLite's one-trip writes (pool.kit.sqlite_trip): binds, orders.
_TRIP_EVENT = TripStatement(INSERT_EVENT, column_keys=("id", "type", "data", "created_at"))
_TRIP_DELIVERIES = TripStatement(INSERT_DELIVERIES["sqlite"])


def insert_event_in_trip(
    trip: Trip, *, event_id: str, type: str, data: dict[str, Any], now: datetime
) -> int:
    """`insert_event` in a SQLite trip (run in the writer's thread: no `await`): the event and
    its deliveries, the same rows; returns the event's sequence number."""
    values = {"id": event_id, "type": type, "data": data, "created_at": now}
    seq = int(trip.rows(_TRIP_EVENT, values)[0][0])
    trip.rows(_TRIP_DELIVERIES, {"seq": seq, "now": now})
    return seq


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


INSERT_DELIVERIES_FOR_MANY = {
    dialect: text(
        fan_out(dialect, events="event ev", now=":now", where=" AND ev.id IN :ids")
    ).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("ids", expanding=True))
    for dialect in _NEW_DELIVERY_ID
}


async def insert_events(
    conn: AsyncConnection, *, events: list[tuple[str, str, dict[str, Any]]], now: datetime
) -> None:
    """Many (id, type, data) events and their deliveries in a few statements (a catch-up
    scan announces thousands of deposits at once).

    On SQLite the events go in as multi-row statements (see pool.kit.bulk) and their
    deliveries are found by event id, so no RETURNING is needed.
    """
    if conn.dialect.name == "postgresql":  # one JSON parameter, whatever the count
        await _recordset_events(conn, events, now)
        return
    for start in range(0, len(events), 1000):  # 4 parameters an event: within SQLite's limit
        chunk = events[start : start + 1000]
        rows = [{"id": i, "type": t, "data": d, "created_at": now} for i, t, d in chunk]
        await insert_rows(conn, event, rows)
        await conn.execute(
            INSERT_DELIVERIES_FOR_MANY[conn.dialect.name],
            {"ids": [i for i, _, _ in chunk], "now": now},
        )


# PostgreSQL: the events as one JSON parameter (see pool.kit.bulk.insert_json) and
# their deliveries from the rows the insert returns — one statement, no look-up of the new
# events by id.
_RECORDSET_EVENTS = f"""
WITH ev AS (
    INSERT INTO event (id, type, data, created_at)
    SELECT r.id, r.type, r.data, $2
      FROM json_to_recordset($1::json) AS r(id varchar(32), type varchar(64), data json)
    RETURNING seq, type
)
{fan_out("postgresql", events="ev", now="$2")}
"""  # noqa: S608 - constant SQL, values bound


async def _recordset_events(
    conn: AsyncConnection, events: list[tuple[str, str, dict[str, Any]]], now: datetime
) -> None:
    records = [{"id": event_id, "type": type_, "data": data} for event_id, type_, data in events]
    await (await asyncpg_connection(conn)).execute(_RECORDSET_EVENTS, dumps_json(records), now)
