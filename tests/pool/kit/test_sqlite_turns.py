"""Taking turns at SQLite's writer (pool.kit.sqlite_turns): with nobody else writing the work
goes on after one look; while another connection commits back to back it yields, up to the
work's share of the time; gaps long enough for a waiter's next try while the others are busy."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from pool.kit import sqlite_turns
from pool.kit.db import Database
from pool.kit.sqlite_turns import LONG_GAP, LONGEST_GAP, LOOK_SECONDS, Turns

WORKED = 1.0  # the transaction before the rest held the writer this long: a gap of LONGEST_GAP
SHORT_WORK = 0.1  # with share 0.5, a rest of at most 0.1 s while the others commit


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep a rest asks for, in order (and slept for real)."""
    asked: list[float] = []
    real = asyncio.sleep

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        await real(seconds)

    monkeypatch.setattr(sqlite_turns, "sleep", sleep)
    return asked


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """No long gap falls due and no commit seen goes stale while a test runs, however slowly a
    loaded machine runs it."""
    monkeypatch.setattr(sqlite_turns, "QUIET_LONG_EVERY", 3600.0)
    monkeypatch.setattr(sqlite_turns, "OTHERS_QUIET_AFTER", 3600.0)


@pytest.fixture
async def other_writer(db: Database) -> AsyncIterator[sqlite3.Connection]:
    """Another connection to the same file, a table of its own to write."""
    other = sqlite3.connect(db.url.database, isolation_level=None)
    other.execute("CREATE TABLE scratch (n INTEGER)")
    yield other
    other.close()


async def _commit_back_to_back(other: sqlite3.Connection, first: asyncio.Event) -> None:
    """A server draining its queue: one short transaction after another. The pause is shorter
    than a look's, and on the same event loop its timer is always due first: between two
    looks there is always a commit, however loaded the machine."""
    for n in itertools.count():
        other.execute("INSERT INTO scratch VALUES (?)", (n,))
        first.set()
        await asyncio.sleep(0.001)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_another_connections_commit_moves_the_version_and_a_read_does_not(
    db: Database, other_writer: sqlite3.Connection
) -> None:
    with Turns(db) as turns:
        probe = turns._probe
        assert probe is not None
        before = sqlite_turns._version(probe)
        other_writer.execute("SELECT count(*) FROM address").fetchone()
        assert sqlite_turns._version(probe) == before
        other_writer.execute("INSERT INTO scratch VALUES (1)")
        assert sqlite_turns._version(probe) != before


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_with_the_writer_idle_the_work_goes_on_after_one_look(
    db: Database, slept: list[float], patient: None
) -> None:
    """Nobody else writes (an idle server, or none): no gap per transaction to slow the work."""
    with Turns(db, share=0.5) as turns:
        for _ in range(3):
            await turns.rest(WORKED)
    assert slept == [LOOK_SECONDS] * 3
    assert turns.looks == 3
    assert not turns.others_busy(time.monotonic())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_work_yields_while_another_connection_commits_back_to_back(
    db: Database, other_writer: sqlite3.Connection, slept: list[float]
) -> None:
    first = asyncio.Event()
    writer = asyncio.create_task(_commit_back_to_back(other_writer, first))
    try:
        await first.wait()
        with Turns(db, share=0.5) as turns:
            await turns.rest(SHORT_WORK)
    finally:
        writer.cancel()
    # A look every LOOK_SECONDS found a new commit, until the work's share of the time ended it.
    assert turns.rested >= SHORT_WORK  # = worked × (1 - share) / share
    assert slept[1:] == [LOOK_SECONDS] * (len(slept) - 1)
    assert 2 <= turns.looks <= 2 + SHORT_WORK / LOOK_SECONDS
    assert turns.others_busy(time.monotonic())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_once_another_connection_committed_the_gaps_let_a_waiter_in(
    db: Database, other_writer: sqlite3.Connection, slept: list[float], patient: None
) -> None:
    """A commit seen in a rest (a server's bind): its next writes may be asleep in the busy
    handler, so the following rests start with a gap long enough for their next try."""
    with Turns(db, share=0.5) as turns:
        await turns.rest(WORKED)
        # Commits while the next rest waits for its first look.
        loop = asyncio.get_running_loop()
        loop.call_soon(other_writer.execute, "INSERT INTO scratch VALUES (1)")
        await turns.rest(WORKED)  # its first look sees the commit, the next finds none
        await turns.rest(WORKED)
    assert slept == [LOOK_SECONDS, LOOK_SECONDS, LOOK_SECONDS, LONGEST_GAP]
    assert turns.looks == 4


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_while_the_others_are_busy_every_few_gaps_one_outlasts_the_busy_handlers_sleep(
    db: Database,
) -> None:
    """Short transactions and short gaps in step with a waiter's 100 ms tries would starve it."""
    with Turns(db) as turns:
        turns.others_seen_at = time.monotonic()
        gaps = [turns.next_gap(0.05) for _ in range(2 * sqlite_turns.LONG_EVERY)]
    long = [n for n, gap in enumerate(gaps, start=1) if gap >= LONG_GAP]
    assert long == [sqlite_turns.LONG_EVERY, 2 * sqlite_turns.LONG_EVERY]
    assert set(gaps) == {sqlite_turns.SHORTEST_GAP, LONG_GAP}
    assert LONG_GAP > 0.1  # SQLite's busy handler sleeps up to 100 ms a try


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_while_the_others_are_quiet_a_long_gap_comes_now_and_then(db: Database) -> None:
    """A writer that arrives while the work goes on after one look, and misses it, gets in at
    the latest at a gap longer than its busy handler's sleep."""
    with Turns(db) as turns:
        turns.long_gap_at = time.monotonic()
        assert turns.next_gap(WORKED) == LOOK_SECONDS
        turns.long_gap_at -= sqlite_turns.QUIET_LONG_EVERY
        assert turns.next_gap(WORKED) == LONG_GAP
        assert turns.next_gap(WORKED) == LOOK_SECONDS
        # Others last seen long enough ago are quiet again.
        turns.others_seen_at = time.monotonic() - sqlite_turns.OTHERS_QUIET_AFTER
        assert turns.next_gap(WORKED) == LOOK_SECONDS


def _versions(pattern: Iterator[int]) -> object:
    return lambda _probe: next(pattern)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_while_the_others_commit_the_rest_lasts_up_to_the_share(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's queued binds, one transaction each: every look finds a new commit."""
    monkeypatch.setattr(sqlite_turns, "_version", _versions(itertools.count()))
    with Turns(db, share=0.5) as turns:
        await turns.rest(WORKED)
    assert turns.rested >= WORKED  # as long as the work took: half the time each
    assert turns.looks <= 2 + WORKED / LOOK_SECONDS


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_takes_no_turns(db: Database) -> None:
    with Turns(db) as turns:
        await turns.rest(WORKED)
    assert turns.rested == 0
    assert turns.looks == 0
