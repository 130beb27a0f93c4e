"""SQLite's bind in one trip to the writer's thread (pool.bindings.one_trip_repository), as
`bind_address` makes it: the same rows as the step-by-step bind, all or nothing, and binds
committed together still each get their own address (invariants 1-3, docs/design.md)."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.secret_box import secret_box
from pool.kit.tables import binding, delivery, event
from pool.webhooks import endpoints as webhooks
from pool.webhooks import outbox
from tests.fixtures.helpers import in_one_trip, load_pool, rows_events_free

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def _subscribe(db: Database, settings: Settings, *events: str) -> None:
    async with db.write() as conn:
        await webhooks.create_endpoint(
            conn,
            secret_box(settings),
            url="http://127.0.0.1:9/hook",
            events=list(events),
            scheme="body",
            description=None,
            now=utc_now(),
        )


def _rows(db: Database, reference: str) -> dict[str, list[tuple]]:
    """What a bind left in the file, as SQLite stores it (text, not what SQLAlchemy reads)."""
    queries = {
        "binding": "SELECT protocol, metadata, bound_at, typeof(bound_at), bound_by, unbound_at"
        " FROM binding WHERE deposit_reference = ?",
        "address": "SELECT a.status, a.last_reference = ?1, a.recycled_at FROM address a"
        " JOIN binding b ON b.address_id = a.id WHERE b.deposit_reference = ?1",
        # The payload's own text (key order, number and string forms), bar what differs.
        "event": "SELECT type, replace(replace(data, ?1, 'REF'), json_extract(data, '$.address'),"
        " 'ADDRESS'), created_at FROM event WHERE json_extract(data, '$.depositReference') = ?1",
        "delivery": "SELECT d.status, d.attempts, d.next_attempt_at, d.retry_from, d.created_at"
        " FROM delivery d JOIN event e ON e.seq = d.event_seq"
        " WHERE json_extract(e.data, '$.depositReference') = ?",
    }
    with sqlite3.connect(db.url.database) as connection:
        return {name: connection.execute(q, (reference,)).fetchall() for name, q in queries.items()}


async def test_the_one_trip_bind_writes_what_the_step_by_step_bind_writes(
    db: Database, settings: Settings
) -> None:
    await load_pool(db, "evm", 2)
    await _subscribe(db, settings, "deposit.address_bound")
    now = utc_now()
    metadata = {"order": 7, "big": 2**70, "note": "é"}
    await allocation.bind_address(
        db, reference="trip", protocol="evm", metadata=metadata, actor="t", now=now
    )

    async def step_by_step(conn):  # noqa: ANN001, ANN202
        return await allocation.bind(
            conn, reference="steps", protocol="evm", metadata=metadata, actor="t", now=now
        )

    await db.run_write(step_by_step)
    trip, steps = _rows(db, "trip"), _rows(db, "steps")
    assert trip == steps
    assert len(trip["delivery"]) == 1  # invariant 8: its delivery written with the event
    assert trip["binding"][0][3] == "text"


async def test_a_failure_after_the_claim_keeps_nothing_of_the_bind(
    db: Database, monkeypatch
) -> None:
    await load_pool(db, "evm", 1)
    await allocation.bind_address(db, reference="first", protocol="evm", metadata=None, actor="t")
    async with db.read() as conn:
        taken = await conn.scalar(select(event.c.id))
    monkeypatch.setattr(outbox, "new_event_id", lambda: taken)
    monkeypatch.setattr(allocation, "new_event_id", lambda: taken)
    await load_pool(db, "evm", 1)
    with pytest.raises(IntegrityError):  # the event's id is taken: its INSERT fails
        await allocation.bind_address(
            db, reference="second", protocol="evm", metadata=None, actor="t"
        )
    assert await rows_events_free(db, binding) == (1, 1, 1)


async def test_binds_committed_together_each_get_their_own_address(db: Database) -> None:
    """One batch holding 40 references, each asked for three times: one binding each, 40
    distinct addresses, the repeats answered with the binding the first one made."""
    await load_pool(db, "evm", 50)
    references = [f"user_{n}" for n in range(40)] * 3
    results = await in_one_trip(
        db,
        [
            allocation.bind_address(db, reference=r, protocol="evm", metadata=None, actor="t")
            for r in references
        ],
    )
    by_reference: dict[str, set[str]] = {}
    for reference, result in zip(references, results, strict=True):
        by_reference.setdefault(reference, set()).add(result.binding.address)
    assert all(len(found) == 1 for found in by_reference.values())
    assert len({next(iter(found)) for found in by_reference.values()}) == 40
    assert Counter(result.created for result in results) == {True: 40, False: 80}
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(binding)) == 40
        assert await conn.scalar(select(func.count()).select_from(event)) == 40
        assert await conn.scalar(select(func.count()).select_from(delivery)) == 0
