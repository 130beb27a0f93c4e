"""Taking turns at SQLite's writer (pool.kit.sqlite_turns): a short gap when nobody else
writes, and as long as the others keep committing (up to the work's share) when they do."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator

import pytest

from pool.kit import sqlite_turns
from pool.kit.db import Database
from pool.kit.sqlite_turns import LONGEST_GAP, Turns

WORKED = 1.0  # the transaction before the rest held the writer this long: a gap of LONGEST_GAP


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_another_connections_commit_moves_the_version_and_a_read_does_not(
    db: Database,
) -> None:
    other = sqlite3.connect(db.url.database, isolation_level=None)
    with Turns(db) as turns:
        probe = turns._probe
        assert probe is not None
        before = sqlite_turns._version(probe)
        other.execute("SELECT count(*) FROM address").fetchone()
        assert sqlite_turns._version(probe) == before
        other.execute("CREATE TABLE scratch (n INTEGER)")
        other.execute("INSERT INTO scratch VALUES (1)")
        assert sqlite_turns._version(probe) != before
    other.close()


def _versions(pattern: Iterator[int]) -> object:
    return lambda _probe: next(pattern)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_with_nobody_else_writing_the_rest_is_one_gap(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_turns, "_version", _versions(itertools.repeat(7)))
    with Turns(db, share=0.5) as turns:
        await turns.rest(WORKED)
    assert LONGEST_GAP <= turns.rested < WORKED / 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_every_few_gaps_one_outlasts_the_busy_handlers_longest_sleep(db: Database) -> None:
    """Short transactions and short gaps in step with a waiter's 100 ms tries would starve it."""
    with Turns(db) as turns:
        gaps = [turns.next_gap(0.05) for _ in range(2 * sqlite_turns.LONG_EVERY)]
    long = [n for n, gap in enumerate(gaps, start=1) if gap >= sqlite_turns.LONG_GAP]
    assert long == [sqlite_turns.LONG_EVERY, 2 * sqlite_turns.LONG_EVERY]
    assert set(gaps) == {sqlite_turns.SHORTEST_GAP, sqlite_turns.LONG_GAP}
    assert sqlite_turns.LONG_GAP > 0.1  # SQLite's busy handler sleeps up to 100 ms a try


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_while_the_others_commit_the_rest_lasts_up_to_the_share(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's queued binds, one transaction each: every look finds a new commit."""
    monkeypatch.setattr(sqlite_turns, "_version", _versions(itertools.count()))
    with Turns(db, share=0.5) as turns:
        await turns.rest(WORKED)
    assert WORKED <= turns.rested < WORKED * 3  # as long as the work took: half the time each


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_takes_no_turns(db: Database) -> None:
    with Turns(db) as turns:
        await turns.rest(WORKED)
    assert turns.rested == 0
