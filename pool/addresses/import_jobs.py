"""A file imported from the console, run in the background of the API process that received it
(docs/operations.md, The console).

The import itself is the one every caller runs (pool.addresses.imports: checked, then written
all or nothing); the job adds a row its progress page reads, written as the import goes. The
file's bytes are held only by the process that received them, never stored: if that process
stops, the job stops reporting, and once its row is stale the page says it was interrupted. An
interrupted import either committed (the audit log says so) or left nothing of itself, and
importing the same file again skips the rows already in the pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import SQLAlchemyError

from pool.addresses.import_formats import RawRow, decode_import, read_rows
from pool.addresses.import_job_repository import (
    DONE,
    FAILED,
    RUNNING,
    NewJob,
    insert_job,
    save_outcome,
    save_progress,
)
from pool.addresses.importer import ImportSource
from pool.addresses.imports import MasterKeyCheck, check_rows, import_file
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import AddrpoolError
from pool.vocabulary import AddressParser, Protocol

log = logging.getLogger("addrpool.imports")

REPORT_SECONDS = 0.5  # progress is written at most this often,
HEARTBEAT_SECONDS = 5.0  # and at least this often while the job runs:
STALE_AFTER = timedelta(seconds=30)  # a running job silent this long has lost its process.
INTERRUPTED = "interrupted"  # shown, never stored: a running job whose process stopped
STOPPED = "the server stopped before the import finished"
UNEXPECTED = "the import failed unexpectedly: the server's log says why"
LISTED_PROBLEMS = 20  # refused rows kept for the page (the count covers all of them)

OnWritten = Callable[[Protocol], None]


@dataclass(slots=True)
class Tracker:
    """Where the import is; updated by the import (from its checking thread too) and read by
    the reporter. Each update replaces the three values together."""

    phase: str = "reading"
    done: int = 0
    total: int = 0

    def update(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, total

    def state(self) -> tuple[str, int, int]:
        return self.phase, self.done, self.total


async def open_job(db: Database, job: NewJob) -> int:
    async with db.write() as conn:
        return await insert_job(conn, job, now=utc_now())


async def run_job(
    db: Database,
    job_id: int,
    job: NewJob,
    data: bytes,
    *,
    parser: AddressParser,
    master_keys: MasterKeyCheck,
    on_written: OnWritten,
) -> str:
    """Import `data` and record how it ended; returns the job's final status."""
    tracker = Tracker()
    reporter = asyncio.create_task(_report(db, job_id, tracker))
    try:
        status, result, error = await _import(
            db, job, data, tracker, parser=parser, master_keys=master_keys
        )
    except asyncio.CancelledError:
        reporter.cancel()
        await _save_outcome(db, job_id, FAILED, None, STOPPED)
        raise
    finally:
        reporter.cancel()
    await _save_outcome(db, job_id, status, result, error)
    if status == DONE and result and result["imported"]:
        on_written(job.protocol)
    return status


async def _import(
    db: Database,
    job: NewJob,
    data: bytes,
    tracker: Tracker,
    *,
    parser: AddressParser,
    master_keys: MasterKeyCheck,
) -> tuple[str, dict[str, Any] | None, str | None]:
    source = ImportSource(
        f"console:{job.file_name}"[:255], job.actor, job.format, job.file_sha256, job.reason
    )
    try:
        rows = await asyncio.to_thread(_read, data, job.format)
        checked = await check_rows(
            rows, protocol=job.protocol, parser=parser, master_keys=master_keys,
            progress=tracker.update,
        )  # fmt: skip
        del rows  # a large file: keep only the checked rows
        report = await import_file(
            db, checked, protocol=job.protocol, source=source, skip_invalid=job.skip_invalid,
            progress=tracker.update,
        )  # fmt: skip
    except AddrpoolError as refused:
        return FAILED, _refused_rows(refused), refused.message
    except Exception:  # a background task's boundary: its page must say it ended
        log.exception("console import failed", extra={"job": job.file_sha256[:12]})
        return FAILED, None, UNEXPECTED
    return DONE, report.summary(), None


def _read(data: bytes, format: Any) -> list[RawRow]:
    """The file's rows; refused whole if a secret is anywhere in it."""
    return list(read_rows(decode_import(data), format=format))


def _refused_rows(refused: AddrpoolError) -> dict[str, Any] | None:
    if not refused.details:
        return None
    return {
        "invalid": refused.details[:LISTED_PROBLEMS],
        "invalidCount": refused.details_count or len(refused.details),
        "invalidByKind": refused.details_by_kind or {},
    }


async def _report(db: Database, job_id: int, tracker: Tracker) -> None:
    reported: tuple[str, int, int] | None = None
    reported_at = time.monotonic()
    while True:
        await asyncio.sleep(REPORT_SECONDS)
        state = tracker.state()
        if state == reported and time.monotonic() - reported_at < HEARTBEAT_SECONDS:
            continue
        phase, done, total = state
        try:
            async with db.write() as conn:
                await save_progress(
                    conn, job_id, phase=phase, done=done, total=total, now=utc_now()
                )
        except (SQLAlchemyError, OSError) as exc:  # the import goes on; the next report may land
            log.warning("import progress not saved", extra={"job_id": job_id, "error": str(exc)})
            continue
        reported, reported_at = state, time.monotonic()


async def _save_outcome(
    db: Database, job_id: int, status: str, result: dict[str, Any] | None, error: str | None
) -> None:
    async with db.write() as conn:
        await save_outcome(conn, job_id, status=status, result=result, error=error, now=utc_now())


def shown_status(row: RowMapping, *, now: datetime) -> str:
    """running, done, failed — or interrupted: running, but silent for longer than any
    process running it would be."""
    if row["status"] == RUNNING and now - row["updated_at"] > STALE_AFTER:
        return INTERRUPTED
    return str(row["status"])
