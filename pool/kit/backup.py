"""`addrpool db backup DEST`: a consistent copy of a running SQLite database, and its key.

The copy goes through SQLite's online backup API, not a file copy: the database file alone
misses whatever is still in the WAL, and a copy of the file and its WAL taken while `serve`
writes can be torn. The backup runs in one step, so it reads one snapshot (a read transaction
in WAL mode, which blocks no writer) and never restarts because a writer committed meanwhile.

Webhook secrets are encrypted with a key the database does not hold (pool/kit/secret_box.py):
the generated key file beside the database is copied beside DEST the same way (`DEST.secret`,
mode 0600), so restoring is putting both files back. PostgreSQL is backed up with pg_dump
(docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from pool.kit.config import Settings
from pool.kit.errors import ConfigurationError
from pool.kit.secret_box import key_file_beside
from pool.kit.writer_lock import sqlite_file

POSTGRES_ADVICE = (
    "addrpool db backup copies SQLite databases only: back PostgreSQL up with pg_dump "
    "(docs/operations.md, Backup and restore) and keep ADDRPOOL_SECRET_KEY with the dump"
)


@dataclass(frozen=True)
class BackupMade:
    source: Path
    destination: Path
    size_bytes: int
    seconds: float
    # Where the key went: the copied key file, or None (ADDRPOOL_SECRET_KEY is set, or no
    # webhook secret was ever stored, so no key was ever generated).
    key_file: Path | None
    key_from_environment: bool


def backup_database(settings: Settings, destination: Path) -> BackupMade:
    source = sqlite_file(settings.database_url)
    if source is None:
        raise ConfigurationError(POSTGRES_ADVICE)
    if not source.is_file():
        raise ConfigurationError(
            f"no SQLite database at {source} (ADDRPOOL_DATABASE_URL, or database_url in the "
            "configuration file): nothing to back up"
        )
    key_destination = key_file_beside(destination)
    for existing in (destination, key_destination):
        if existing.exists():
            raise ConfigurationError(f"{existing} already exists: choose a new backup name")
    if not destination.parent.is_dir():
        raise ConfigurationError(f"{destination.parent} is not a directory")
    started = time.monotonic()
    _copy_database(source, destination)
    # The key after the snapshot: whatever secret the snapshot holds was sealed with a key that
    # existed before it, and a generated key file never changes once written.
    key_source = key_file_beside(source)
    copied_key = None
    if settings.secret_key is None and key_source.is_file():
        _write_new(key_destination, key_source.read_bytes())
        copied_key = key_destination
    return BackupMade(
        source=source,
        destination=destination,
        size_bytes=destination.stat().st_size,
        seconds=time.monotonic() - started,
        key_file=copied_key,
        key_from_environment=settings.secret_key is not None,
    )


def _copy_database(source: Path, destination: Path) -> None:
    """Into a temporary file beside DEST, checked, then linked to DEST's name: DEST appears
    whole or not at all, and a DEST that appeared meanwhile is still not overwritten."""
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    _write_new(partial, b"")
    try:
        # mode=rw: a missing file is an error, never a new empty database.
        reader = sqlite3.connect(f"file:{source}?mode=rw", uri=True)
        writer = sqlite3.connect(partial)
        try:
            reader.execute("PRAGMA busy_timeout = 30000")  # a checkpoint may hold the WAL index
            reader.backup(writer, pages=-1)  # one step: one snapshot
            (verdict,) = writer.execute("PRAGMA quick_check").fetchone()
        finally:
            writer.close()
            reader.close()
        if verdict != "ok":
            raise ConfigurationError(f"the copy of {source} failed its check: {verdict}")
        try:
            os.link(partial, destination)
        except FileExistsError:
            raise ConfigurationError(
                f"{destination} already exists: choose a new backup name"
            ) from None
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot back up {source}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _write_new(path: Path, content: bytes) -> None:
    """A new file readable by its owner only (the key, and a database of key hashes)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{path} already exists: choose a new backup name") from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(content)
