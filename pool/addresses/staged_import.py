"""A SQLite import in short transactions, made the pool's all at once or not at all.

SQLite has one writer. Written in one transaction, a million addresses held it for their whole
write (15 s and more) and every bind of a running server waited, or gave up with 503
DATABASE_BUSY (docs/performance.md, "Binds during an import"). So a SQLite import:

1. takes the database's import lock (pool.kit.import_lock: imports wait for each other, and a
   crashed one is known to be dead) and finishes or cleans up what an interrupted import left
   (pool.addresses.import_recovery);
2. opens its batch as `importing` (one small write, with the rows' master keys);
3. writes its rows as `importing` in chunks of about CHUNK_SECONDS each, the server's writes
   taking their turn between them (pool.kit.sqlite_turns): nothing claims, counts, lists or
   watches such a row;
4. commits: one small write marks the batch `committed`, with its counts and its audit row.
   From here the rows ARE the pool's, whatever happens next;
5. hands the rows over (`importing` → `available`) in chunks, marks the batch `done`, and
   refreshes the planner's statistics, an index per write.

A failure before 4 deletes the batch's rows (in chunks), the master keys it recorded and the
batch itself, then raises: nothing was visible and nothing is left. A crash leaves them to the
next holder of the lock. A failure in 5 is logged and left to the next holder too: the import
succeeded. Waiting for the writer is normal here, never an error: a write that found the
database busy past SQLite's busy timeout is tried again, with a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses import import_repository as repo
from pool.addresses.import_repository import ImportSource
from pool.addresses.importer import (
    ANALYZE_AFTER,
    ImportReport,
    Progress,
    Validation,
    new_report,
    record_audit,
    records,
)
from pool.addresses.insert_repository import address_indexes, analyze_index, insert_new_addresses
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.db_failures import is_database_busy
from pool.kit.sqlite_turns import Turns
from pool.kit.writer_lock import serving
from pool.vocabulary import BATCH_COMMITTED, BATCH_DONE, BATCH_IMPORTING, IMPORTING, Protocol

log = logging.getLogger("addrpool.import")
T = TypeVar("T")

# How long one chunk should hold the writer while a server runs: a bind that arrives meanwhile
# waits for it (docs/performance.md, "Binds during an import"). Chunks are sized by the time the
# last took; between them the others take their turn (pool.kit.sqlite_turns), at most as long
# again. With no server on the database (an import before the first start) nobody waits, and
# larger chunks rewrite fewer index pages per row: each short transaction writes every index
# page it touched, about two a row in a pool of a million (docs/performance.md).
CHUNK_SECONDS = 0.1
ALONE_CHUNK_SECONDS = 2.0
SHARE = 0.5
BUSY_RETRIES = 30  # each after SQLite's busy timeout (10 s): five minutes of a busy writer


# Rows in the first chunk of each kind (then sized by time), and the bounds of any chunk.
FIRST_WRITE, FIRST_HAND_OVER, FIRST_REMOVAL = 5_000, 10_000, 5_000
SMALLEST_CHUNK, LARGEST_CHUNK = 200, 50_000


class ChunkSizer:
    """Rows per chunk, adjusted after each chunk so that one takes about `seconds`: the cost of
    a row grows with the table (its indexes) and with the machine's load."""

    def __init__(self, first: int, *, seconds: float = CHUNK_SECONDS) -> None:
        self.largest = LARGEST_CHUNK
        self.smallest = min(SMALLEST_CHUNK, self.largest)
        self.size = min(first, self.largest)
        self.seconds = seconds

    def aim(self, seconds: float) -> None:
        """A new target: a shorter one (a server started) applies from the next chunk."""
        if seconds < self.seconds:
            self.size = max(self.smallest, int(self.size * seconds / self.seconds))
        self.seconds = seconds

    def took(self, rows: int, elapsed: float) -> None:
        if rows < self.size or elapsed <= 0:
            return  # a short last chunk says little about the next
        wanted = self.size * self.seconds / elapsed
        if wanted >= self.size / 2:
            # Halfway there at a time: one slow chunk (a checkpoint, a busy machine) is noise.
            wanted = (self.size + wanted) / 2
        self.size = int(min(self.largest, max(self.smallest, wanted)))


@dataclass(slots=True)
class Chunks:
    """Short writes sized by a ChunkSizer, the others' turn after each."""

    db: Database
    sizer: ChunkSizer
    turns: Turns

    @property
    def size(self) -> int:
        """Rows for the next chunk."""
        return self.sizer.size

    def aim(self) -> None:
        """Sizes the next chunk for whoever may be waiting: call before reading `size`."""
        database = self.db.url.database
        alone = bool(database) and database != ":memory:" and not serving(Path(str(database)))
        self.sizer.aim(ALONE_CHUNK_SECONDS if alone else CHUNK_SECONDS)

    async def write(self, work: Callable[[AsyncConnection], Awaitable[int]]) -> int:
        """One chunk (of `size` rows or fewer, `aim` first): `work` returns how many rows it
        wrote."""
        started: list[float] = []

        async def timed(conn: AsyncConnection) -> int:
            started.append(time.monotonic())  # in the transaction: the writer is ours
            return await work(conn)

        done = await write_patiently(self.db, timed)
        worked = time.monotonic() - started[-1]
        self.sizer.took(done, worked)
        await self.turns.rest(worked)
        return done


async def write_patiently(db: Database, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """`work` in a write transaction, tried again while the database is busy: another process
    (a server's binds) holding the writer past the busy timeout is a wait, not a failure."""
    for attempt in range(1, BUSY_RETRIES + 1):
        try:
            return await db.run_write(work)
        except OperationalError as exc:
            if not is_database_busy(exc) or attempt == BUSY_RETRIES:
                raise
            log.warning("the import waits for the database (another process is writing)")
    raise AssertionError("unreachable")  # pragma: no cover


async def import_in_stages(
    db: Database,
    *,
    protocol: Protocol,
    validation: Validation,
    source: ImportSource,
    progress: Progress | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> ImportReport:
    """Write checked rows as one import batch (the caller holds the import lock and has
    recovered what an interrupted import left: pool.addresses.imports)."""
    report = new_report(protocol, validation, dry_run=False)
    now = utc_now()

    async def open_batch(conn: AsyncConnection) -> tuple[int, dict[str, int]]:
        batch_id = await repo.open_batch(
            conn, protocol=protocol, source=source, now=now, status=BATCH_IMPORTING
        )
        keys = await repo.master_key_ids(
            conn,
            protocol=protocol,
            keys={r.master_public_key for r in validation.rows},
            fingerprints=fingerprints or {},
            now=now,
        )
        return batch_id, keys

    batch_id, master_keys = await write_patiently(db, open_batch)
    report.batch_id = batch_id
    try:
        await _write_rows(db, report, validation, master_keys, now=now, progress=progress)
        await _commit(db, report, validation, source=source, now=now)
    except BaseException:
        await discard_quietly(db, batch_id=batch_id, protocol=protocol, created_at=now)
        raise
    try:
        await hand_over(db, batch_id=batch_id, total=report.imported, progress=progress)
        await finish(db, batch_id=batch_id, imported=report.imported)
    except Exception as exc:  # committed: the pool has the rows; the next start hands them over
        log.warning(
            "import committed; handing its rows over was interrupted and is finished by the "
            "next start or import",
            extra={"batch": batch_id, "error": str(exc)},
        )
    return report


async def _write_rows(
    db: Database,
    report: ImportReport,
    validation: Validation,
    master_keys: dict[str, int],
    *,
    now: datetime,
    progress: Progress | None,
) -> None:
    rows = validation.rows
    with Turns(db, share=SHARE) as turns:
        writer = Chunks(db, ChunkSizer(FIRST_WRITE), turns)
        written = 0
        while written < len(rows):
            writer.aim()
            # Built before the transaction: the writer is held for the database's work only.
            chunk = records(
                report.protocol,
                rows[written : written + writer.size],
                report.batch_id or 0,
                master_keys,
                now,
                status=IMPORTING,
            )
            written += await writer.write(partial(_insert, chunk))
            if progress is not None:
                progress("written", written, len(rows))


async def _insert(chunk: list[dict[str, Any]], conn: AsyncConnection) -> int:
    await insert_new_addresses(conn, chunk)
    return len(chunk)


async def _commit(
    db: Database,
    report: ImportReport,
    validation: Validation,
    *,
    source: ImportSource,
    now: datetime,
) -> None:
    """One small write: the counts, the batch `committed`, the audit row."""
    batch_id = report.batch_id or 0

    async def commit(conn: AsyncConnection) -> None:
        report.imported = await repo.count_importing(conn, batch_id=batch_id)
        report.already_in_pool = len(validation.rows) - report.imported
        await repo.close_batch(
            conn,
            batch_id=batch_id,
            imported=report.imported,
            skipped=report.skipped,
            status=BATCH_COMMITTED,
        )
        await record_audit(conn, report, source=source, now=now)

    await write_patiently(db, commit)


async def hand_over(
    db: Database, *, batch_id: int, total: int = 0, progress: Progress | None = None
) -> int:
    """Make a committed batch's rows available, a chunk at a time; how many were."""

    def hand_over_chunk(conn: AsyncConnection, limit: int) -> Awaitable[int]:
        return repo.hand_over_rows(conn, batch_id=batch_id, limit=limit)

    def report(done: int) -> None:
        if progress is not None:
            progress("made available", done, max(total, done))

    return await _change_in_chunks(db, FIRST_HAND_OVER, hand_over_chunk, report)


async def _change_in_chunks(
    db: Database,
    first: int,
    change: Callable[[AsyncConnection, int], Awaitable[int]],
    after_chunk: Callable[[int], None] | None = None,
) -> int:
    """`change` (rows changed, at most the limit it is given) a chunk per write, sized by time
    and taking turns with the server, until a chunk changes nothing; how many rows changed."""
    done = 0
    with Turns(db, share=SHARE) as turns:
        writer = Chunks(db, ChunkSizer(first), turns)

        async def step(conn: AsyncConnection) -> int:
            return await change(conn, writer.size)

        while True:
            writer.aim()
            changed = await writer.write(step)
            if not changed:
                break
            done += changed
            if after_chunk is not None:
                after_chunk(done)
    return done


async def finish(db: Database, *, batch_id: int, imported: int) -> None:
    """The batch `done`; then, for a large one, the planner's statistics
    (insert_repository.refresh_statistics), an index per write: the rows they count are the
    pool's."""

    async def done(conn: AsyncConnection) -> None:
        await repo.set_batch_status(conn, batch_id=batch_id, status=BATCH_DONE)

    await write_patiently(db, done)
    if imported < ANALYZE_AFTER:
        return
    async with db.read() as conn:
        indexes = await address_indexes(conn)
    with Turns(db, share=SHARE) as turns:
        for name in indexes:
            started = time.monotonic()
            await write_patiently(db, partial(analyze_index, name=name))
            await turns.rest(time.monotonic() - started)


async def discard(db: Database, *, batch_id: int, protocol: Protocol, created_at: datetime) -> int:
    """Remove an uncommitted batch: its rows (a chunk at a time), the master keys it recorded
    that no address uses, then the batch itself; how many rows went."""

    def remove_chunk(conn: AsyncConnection, limit: int) -> Awaitable[int]:
        return repo.remove_rows(conn, batch_id=batch_id, limit=limit)

    removed = await _change_in_chunks(db, FIRST_REMOVAL, remove_chunk)
    async with db.read() as conn:
        recorded = await repo.keys_first_recorded_at(conn, protocol=protocol, created_at=created_at)
        unused = sorted(set(recorded) - await repo.keys_in_use(conn, key_ids=recorded))

    # One write each: SQLite checks that no address refers to a row it deletes, and with no
    # index on those columns that is a pass over the addresses (the batch: once, at the end).
    for key_id in unused:
        await write_patiently(db, partial(repo.delete_master_keys, key_ids=[key_id]))
    await write_patiently(db, partial(repo.delete_batch, batch_id=batch_id))
    return removed


async def discard_quietly(
    db: Database, *, batch_id: int, protocol: Protocol, created_at: datetime
) -> None:
    """`discard` on the way out of a failed import: its own failure must not hide the one
    that ended the import, and the next holder of the lock finishes the job."""
    try:
        await discard(db, batch_id=batch_id, protocol=protocol, created_at=created_at)
    except Exception as exc:
        log.warning(
            "the failed import's rows are removed at the next start or import",
            extra={"batch": batch_id, "error": str(exc)},
        )
