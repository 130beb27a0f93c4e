"""One process at a time serves a SQLite database: SQLite has one writer, and two servers
on one file would each take turns waiting out the other's busy timeout.

The lock is an exclusive `flock` on `<database>.lock` beside the database file, held for the
life of the process. The kernel drops it when the process ends however it ends (SIGKILL
included), so a crash never leaves a stale lock behind; the file itself is left in place and
is harmless. The process id written into it is only for the refusal's message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pool.kit.errors import ConfigurationError, DatabaseUnreachable


def sqlite_file(database_url: str) -> Path | None:
    """The SQLite database's file, or None for PostgreSQL (and an in-memory database)."""
    if not database_url.startswith("sqlite"):
        return None
    try:
        path = make_url(database_url).database  # a query (?timeout=…) is not part of it
    except (ArgumentError, ValueError):
        return None  # not a URL at all: opening the database says so in its own words
    return Path(path) if path and path != ":memory:" else Path("addrpool.db")


def lock_file(database_file: Path) -> Path:
    return database_file.with_name(database_file.name + ".lock")


@contextlib.contextmanager
def writer_lock(database_url: str) -> Iterator[None]:
    """Hold the database's lock for the block (a process that serves: its whole life).

    Nothing to hold for PostgreSQL, which has no such limit. Refuses with one line naming the
    process that holds it.
    """
    database_file = sqlite_file(database_url)
    if database_file is None or database_url.endswith(":memory:"):
        yield
        return
    descriptor = _locked(database_file)
    try:
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def serving(database_file: Path) -> bool:
    """Whether a process (`serve`, `api`, `worker`) holds the database's lock right now: a
    shared lock is refused while it does, and taken and dropped again at once when it does not
    (so that it never keeps a server from starting)."""
    path = lock_file(database_file)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no server ever ran here
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # and with it the shared lock, if it was taken
    return False


def _locked(database_file: Path) -> int:
    path = lock_file(database_file)
    if not database_file.parent.is_dir():
        raise DatabaseUnreachable(
            f"cannot open the SQLite database {database_file.resolve()}: its folder does not exist"
        )
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DatabaseUnreachable(
            f"cannot create the lock file {path.resolve()} beside the SQLite database: "
            f"{exc.strerror or exc}"
        ) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(descriptor)
        os.close(descriptor)
        raise ConfigurationError(
            f"another addrpool process{holder} is already serving {database_file} (locked: "
            f"{path}); SQLite allows one process: stop it first, or use PostgreSQL for several"
        ) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


def _holder(descriptor: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(descriptor, 32, 0).decode().strip())
        return f" (pid {pid})"
    return ""
