"""One import at a time writes into a SQLite database, and a crashed one is known to be dead.

A SQLite import writes its rows in many short transactions before it commits
(pool.addresses.staged_import), so its unfinished rows sit in the database while it runs. The
lock says whether anyone is still writing them: an exclusive `flock` on `<database>.import.lock`,
held from before an import's batch is opened until its rows are all the pool's or all gone. The
kernel drops it when the process ends however it ends (SIGKILL included), so whoever takes the
lock next knows that every unfinished batch it finds belongs to nobody: it cleans them up, or
finishes handing a committed one over (pool.addresses.import_recovery). Imports of one database
wait for each other, which also means that two imports of overlapping files never race for the
same address.

PostgreSQL writes an import in one transaction, rows and batch together: nothing to lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from pool.kit.db import Database

POLL_SECONDS = 0.2  # while another import holds the lock


def import_lock_file(db: Database) -> Path | None:
    """The lock file beside a SQLite database's file; None for PostgreSQL or in memory."""
    name = db.url.database if db.is_sqlite else None
    if not name or name == ":memory:":
        return None
    database_file = Path(name)
    return database_file.with_name(database_file.name + ".import.lock")


@contextlib.asynccontextmanager
async def holding_import_lock(
    db: Database, *, on_wait: Callable[[], None] | None = None
) -> AsyncIterator[None]:
    """Hold the database's import lock for the block, waiting for another import to end first
    (`on_wait` is called once if it has to). Polls rather than blocking a thread in `flock`:
    a cancelled wait must not leave a thread behind that takes the lock later, for nobody."""
    path = import_lock_file(db)
    if path is None:
        yield
        return
    descriptor = _open(path)
    try:
        told = False
        while not _try_lock(descriptor):
            if on_wait is not None and not told:
                on_wait()
                told = True
            await asyncio.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


@contextlib.asynccontextmanager
async def try_import_lock(db: Database) -> AsyncIterator[bool]:
    """Yields whether the lock was free (and is now held for the block); never waits. Always
    True for PostgreSQL, where there is nothing to hold."""
    path = import_lock_file(db)
    if path is None:
        yield True
        return
    descriptor = _open(path)
    try:
        yield _try_lock(descriptor)
    finally:
        os.close(descriptor)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
