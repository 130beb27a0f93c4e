"""The settled horizon's rule for looks that overlap: a read of the lock table settles only the
looks that had finished before it started. The database's answers are scripted here, since the
interleaving that matters (a look finishing while another request reads the lock table) cannot
be produced on demand by a real server; tests/api/test_events_feed.py proves the horizon on real
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pool.webhooks import feed_horizon
from pool.webhooks.feed_horizon import SettledHorizon


class ScriptedDatabase:
    """`read()` gives nothing; the horizon's two queries answer from the script."""

    def __init__(self) -> None:
        self.issued = 0
        self.writers: list[tuple[frozenset[str], asyncio.Event | None]] = []

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        yield None


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedDatabase:
    db = ScriptedDatabase()

    async def last_issued_seq(_conn: Any) -> int:
        return db.issued

    async def event_writers(_conn: Any) -> frozenset[str]:
        writers, gate = db.writers.pop(0)
        if gate is not None:
            await gate.wait()
        return writers

    monkeypatch.setattr(feed_horizon, "last_issued_seq", last_issued_seq)
    monkeypatch.setattr(feed_horizon, "event_writers", event_writers)
    return db


async def test_a_look_with_no_writers_settles_at_once(scripted: ScriptedDatabase) -> None:
    scripted.issued = 4
    scripted.writers = [(frozenset(), None)]
    horizon = await SettledHorizon().advance(scripted)
    assert (horizon.settled, horizon.issued) == (4, 4)


async def test_a_look_settles_once_its_writers_are_gone(scripted: ScriptedDatabase) -> None:
    settled = SettledHorizon()
    scripted.issued = 5
    scripted.writers = [(frozenset({"3/1"}), None)]
    assert (await settled.advance(scripted)).settled == 0
    scripted.issued = 9
    scripted.writers = [(frozenset({"3/1", "4/7"}), None)]  # 3/1 still at it
    assert (await settled.advance(scripted)).settled == 0
    scripted.writers = [(frozenset({"4/7"}), None)]  # 3/1 ended, 4/7 not
    assert (await settled.advance(scripted)).settled == 5
    scripted.writers = [(frozenset({"5/2"}), None)]
    assert (await settled.advance(scripted)).settled == 9


async def test_a_lock_table_read_does_not_settle_a_look_that_finished_during_it(
    scripted: ScriptedDatabase,
) -> None:
    settled = SettledHorizon()
    scripted.issued = 5
    scripted.writers = [(frozenset({"3/1"}), None)]
    await settled.advance(scripted)
    # A slow read of the lock table (3/1 gone, 4/7 not begun yet) is under way…
    gate = asyncio.Event()
    scripted.writers = [(frozenset(), gate)]
    slow = asyncio.create_task(settled.advance(scripted, patience=0.0))
    await asyncio.sleep(0)
    # …when another look finishes: seq 7 handed out, its writer 4/7 still open.
    scripted.issued = 7
    scripted.writers = [(frozenset({"4/7"}), None)]
    assert (await settled.advance(scripted)).settled == 5
    gate.set()
    await slow
    # The slow read saw no writer, but it began before 4/7's look: seq 7 is not settled.
    scripted.writers = [(frozenset({"4/7"}), None)]
    assert (await settled.advance(scripted)).settled == 5
