"""SQLite's WAL is checkpointed by a thread of its own, off the writers' commits."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from pool.kit.db import SQLITE_WRITER_CACHE_KIB, Database
from pool.kit.sqlite_checkpoint import SAFETY_NET_PAGES, Checkpointer


def test_the_thread_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "pool.kit.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints here
    writer.execute("CREATE TABLE t (x TEXT)")
    writer.executemany("INSERT INTO t VALUES (?)", [("x" * 500,) for _ in range(2000)])
    assert path.stat().st_size < 100_000  # a megabyte written, all of it in the WAL so far
    checkpointer = Checkpointer(str(path), interval=0.02)
    checkpointer.start()
    deadline = time.monotonic() + 5
    while checkpointer.checkpoints < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    checkpointer.stop()
    assert not any(t.name == "sqlite-checkpoint" for t in threading.enumerate())
    assert path.stat().st_size > 1_000_000  # copied into the file, the writer still open
    writer.close()


async def test_a_database_checkpoints_once_it_writes_and_stops_when_disposed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pool.kit.db"
    db = Database(f"sqlite:///{path}")
    async with db.read() as conn:  # reading starts nothing
        await conn.execute(text("SELECT 1"))
    assert not any(t.name == "sqlite-checkpoint" for t in threading.enumerate())
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE t (x TEXT)"))
        for _ in range(50):
            await conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "y" * 4000})
        wal_limit = await conn.scalar(text("PRAGMA wal_autocheckpoint"))
    assert wal_limit == SAFETY_NET_PAGES  # the writers' own checkpoint is only a safety net
    assert any(t.name == "sqlite-checkpoint" for t in threading.enumerate())
    await db.dispose()
    assert not any(t.name == "sqlite-checkpoint" for t in threading.enumerate())


async def test_sqlite_writes_share_one_connection_with_a_large_page_cache(tmp_path: Path) -> None:
    """Its cache stays warm from one write to the next: no other connection of ours writes."""
    db = Database(f"sqlite:///{tmp_path / 'pool.kit.db'}")
    seen = set()
    try:
        for _ in range(3):
            async with db.write() as conn:
                raw = await conn.get_raw_connection()
                seen.add(id(raw.driver_connection))
                assert await conn.scalar(text("PRAGMA cache_size")) == -SQLITE_WRITER_CACHE_KIB
        async with db.read() as conn:  # readers keep SQLite's default
            assert await conn.scalar(text("PRAGMA cache_size")) == -2000
    finally:
        await db.dispose()
    assert len(seen) == 1
