"""SQLite writes in one trip to the writer's thread, those that queue together committed
together (pool.kit.sqlite_trip, pool.kit.group_commit), on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, insert, select
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

from pool.kit import group_commit
from pool.kit.db import Database
from pool.kit.db_failures import is_database_busy
from pool.kit.sqlite_trip import Trip, TripStatement
from pool.kit.types import UTCDateTime

_metadata = MetaData()
_row = Table(
    "row",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String, nullable=False, unique=True),
    Column("kind", String, nullable=False),
    Column("at", UTCDateTime),
    Column("naive_at", DateTime),
    Column("doc", JSON),
)
_INSERT = TripStatement(
    insert(_row).values(kind="constant").returning(_row.c.id),
    column_keys=("label", "at", "naive_at", "doc"),
)
MOMENT = datetime(2026, 12, 6, 18, 45, 31, 123456, tzinfo=UTC)


@pytest.fixture
async def sqlite_db(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'trip.db'}")
    async with db.write() as conn:
        await conn.run_sync(_metadata.create_all)
    yield db
    await db.dispose()


def _insert(label: str):
    def work(trip: Trip) -> int:
        values = {"label": label, "at": MOMENT, "naive_at": MOMENT.replace(tzinfo=None)}
        return int(trip.rows(_INSERT, {**values, "doc": {"n": 2**70, "label": label}})[0][0])

    return work


def _raw(db: Database, query: str) -> list[tuple]:
    with sqlite3.connect(db.url.database) as connection:
        return connection.execute(query).fetchall()


async def _labels(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.scalars(select(_row.c.label).order_by(_row.c.id))).all())


async def test_a_trip_writes_what_sqlalchemy_writes(sqlite_db: Database) -> None:
    """Same text for datetimes, same JSON, the statement's own constants: the bare connection
    gets the values SQLAlchemy's own execution would have given it."""
    await sqlite_db.write_in_one_trip(_insert("trip"))
    async with sqlite_db.write() as conn:
        values = {"label": "sqlalchemy", "at": MOMENT, "naive_at": MOMENT.replace(tzinfo=None)}
        await conn.execute(
            insert(_row).values(kind="constant"),
            {**values, "doc": {"n": 2**70, "label": "sqlalchemy"}},
        )
    trip, alchemy = _raw(
        sqlite_db, "SELECT kind, at, typeof(at), naive_at, doc FROM row ORDER BY id"
    )
    assert trip == alchemy[:4] + (alchemy[4].replace("sqlalchemy", "trip"),)
    assert trip[1] == "2026-12-06 18:45:31.123456"
    async with sqlite_db.read() as conn:
        read = (await conn.execute(select(_row.c.at, _row.c.doc).order_by(_row.c.id))).first()
    assert read == (MOMENT, {"n": 2**70, "label": "trip"})


async def test_works_that_queue_together_share_one_transaction(
    sqlite_db: Database, monkeypatch
) -> None:
    batches: list[int] = []
    run_batch = group_commit.run_batch

    def counted(connection, compiler, works):  # noqa: ANN001, ANN202 - a spy on the real one
        batches.append(len(works))
        return run_batch(connection, compiler, works)

    monkeypatch.setattr(group_commit, "run_batch", counted)
    async with sqlite_db.write():  # the writer is busy: the works queue meanwhile
        waiting = [
            asyncio.create_task(sqlite_db.write_in_one_trip(_insert(f"r{n}"))) for n in range(20)
        ]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in waiting)
    ids = await asyncio.gather(*waiting)
    assert batches == [20]
    assert ids == sorted(ids)  # in the order they came
    assert await _labels(sqlite_db) == [f"r{n}" for n in range(20)]


async def test_a_failing_work_undoes_its_own_writes_only(sqlite_db: Database) -> None:
    def fails_after_writing(trip: Trip) -> None:
        _insert("written then undone")(trip)
        _insert("before")(trip)  # the label is taken: IntegrityError

    async with sqlite_db.write():
        before = asyncio.create_task(sqlite_db.write_in_one_trip(_insert("before")))
        failing = asyncio.create_task(sqlite_db.write_in_one_trip(fails_after_writing))
        after = asyncio.create_task(sqlite_db.write_in_one_trip(_insert("after")))
        await asyncio.sleep(0.05)
    assert await before and await after
    with pytest.raises(IntegrityError):
        await failing
    assert await _labels(sqlite_db) == ["before", "after"]


async def test_when_the_transaction_itself_fails_every_caller_hears_it(
    sqlite_db: Database,
) -> None:
    """SQLite rolls the whole transaction back on its own (here a work ends it, as an I/O
    error would): nothing of the batch is kept, not even the works that went well."""

    def ends_the_transaction(trip: Trip) -> None:
        trip._connection.execute("ROLLBACK")  # a fault SQLite only shows under I/O errors

    async with sqlite_db.write():
        tasks = [
            asyncio.create_task(sqlite_db.write_in_one_trip(work))
            for work in (_insert("a"), ends_the_transaction, _insert("b"))
        ]
        await asyncio.sleep(0.05)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert await _labels(sqlite_db) == []
    assert await sqlite_db.write_in_one_trip(_insert("later")) == 1  # the writer goes on


async def test_another_process_holding_the_writer_is_a_busy_error(
    sqlite_db: Database,
) -> None:
    async with sqlite_db.write() as conn:
        await conn.execute(sql("PRAGMA busy_timeout=50"))
    holder = sqlite3.connect(sqlite_db.url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception, match="database is locked") as raised:
            await sqlite_db.write_in_one_trip(_insert("x"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert is_database_busy(raised.value)  # the API's 503 DATABASE_BUSY
    assert await sqlite_db.write_in_one_trip(_insert("x")) == 1


async def test_a_cancelled_caller_leaves_no_half_written_trip(sqlite_db: Database) -> None:
    """Cancelled while queued: its work never runs. Cancelled during its trip: the trip ends
    (here, commits) before the writer's lock goes to anyone else."""
    async with sqlite_db.write():
        queued = asyncio.create_task(sqlite_db.write_in_one_trip(_insert("never")))
        await asyncio.sleep(0.02)
        queued.cancel()
    finished = []

    def slow(trip: Trip) -> None:
        _insert("slow")(trip)
        time.sleep(0.2)
        finished.append(time.monotonic())

    running = asyncio.create_task(sqlite_db.write_in_one_trip(slow))
    await asyncio.sleep(0.05)
    running.cancel()
    async with sqlite_db.write():
        entered = time.monotonic()
    assert finished and finished[0] <= entered
    assert await _labels(sqlite_db) == ["slow"]
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_other_writers_get_their_turn_between_batches(sqlite_db: Database) -> None:
    """Under a stream of trips from 32 callers, a SQLAlchemy writer still gets the lock
    promptly: it queues on it with the batches, one batch at most ahead of it."""
    stop = asyncio.Event()
    done = 0

    async def caller(n: int) -> None:
        nonlocal done
        while not stop.is_set():
            await sqlite_db.write_in_one_trip(_insert(f"c{n}_{done}"))
            done += 1

    callers = [asyncio.create_task(caller(n)) for n in range(32)]
    waits = []
    try:
        await asyncio.sleep(0.2)
        for _ in range(20):
            started = time.perf_counter()
            async with sqlite_db.write() as conn:
                waits.append(time.perf_counter() - started)
                await conn.execute(sql("SELECT count(*) FROM row"))
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*callers)
    assert done > 100
    assert max(waits) < 1.0, waits  # one batch of ≤ 64 short works, even on a busy machine


async def test_trips_follow_the_writer_connection_when_the_pool_replaces_it(
    sqlite_db: Database,
) -> None:
    assert await sqlite_db.write_in_one_trip(_insert("before")) == 1
    with pytest.raises(RuntimeError):
        async with sqlite_db.write() as conn:
            await conn.invalidate()  # as after a fault: the pool closes it, opens another next
            raise RuntimeError("the transaction ends with it")
    await asyncio.sleep(0.05)
    assert await sqlite_db.write_in_one_trip(_insert("after")) == 2
    async with sqlite_db.write() as conn:  # the SQLAlchemy writers and the trips still share it
        assert await conn.scalar(sql("SELECT count(*) FROM row")) == 2
