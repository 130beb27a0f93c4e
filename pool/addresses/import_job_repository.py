"""The SQL of the console's import jobs (pool.addresses.import_jobs): create, report progress,
finish, read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import import_job
from pool.vocabulary import Protocol

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass(frozen=True, slots=True)
class NewJob:
    protocol: Protocol
    actor: str
    reason: str
    file_name: str
    file_sha256: str
    size_bytes: int
    format: str
    skip_invalid: bool


async def insert_job(conn: AsyncConnection, job: NewJob, *, now: datetime) -> int:
    inserted = await conn.execute(
        insert(import_job)
        .values(
            protocol=job.protocol,
            actor=job.actor,
            reason=job.reason,
            file_name=job.file_name,
            file_sha256=job.file_sha256,
            size_bytes=job.size_bytes,
            format=job.format,
            skip_invalid=job.skip_invalid,
            status=RUNNING,
            phase="reading",
            done=0,
            total=0,
            created_at=now,
            updated_at=now,
        )
        .returning(import_job.c.id)
    )
    return int(inserted.scalar_one())


async def save_progress(
    conn: AsyncConnection, job_id: int, *, phase: str, done: int, total: int, now: datetime
) -> None:
    await conn.execute(
        update(import_job)
        .where(import_job.c.id == job_id, import_job.c.status == RUNNING)
        .values(phase=phase[:16], done=done, total=total, updated_at=now)
    )


async def save_outcome(
    conn: AsyncConnection,
    job_id: int,
    *,
    status: str,
    result: dict[str, Any] | None,
    error: str | None,
    now: datetime,
) -> None:
    await conn.execute(
        update(import_job)
        .where(import_job.c.id == job_id, import_job.c.status == RUNNING)
        .values(
            status=status,
            result=result,
            error=None if error is None else error[:1000],
            updated_at=now,
            finished_at=now,
        )
    )


async def load_job(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    found = await conn.execute(select(import_job).where(import_job.c.id == job_id))
    return found.mappings().first()


async def recent_jobs(conn: AsyncConnection, *, limit: int) -> list[RowMapping]:
    found = await conn.execute(select(import_job).order_by(import_job.c.id.desc()).limit(limit))
    return list(found.mappings())
