"""SQL for import batches and master public keys, and for the rows of a SQLite import that is
written a chunk at a time (pool.addresses.staged_import): handed over to the pool, or removed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from pool.kit.tables import address, import_batch, master_key
from pool.vocabulary import (
    AVAILABLE,
    BATCH_COMMITTED,
    BATCH_DONE,
    BATCH_IMPORTING,
    ImportBatchStatus,
    Protocol,
)


@dataclass(frozen=True, slots=True)
class ImportSource:
    """Where the rows came from, for the import batch and the audit log (defined here, beside
    the SQL that records it, because a repository imports no service)."""

    name: str
    actor: str
    format: str | None = None
    sha256: str | None = None
    reason: str | None = None  # an operator's why (the console asks for it)


@dataclass(frozen=True, slots=True)
class UnfinishedBatch:
    id: int
    protocol: Protocol
    status: ImportBatchStatus  # importing or committed
    imported: int
    created_at: datetime


async def open_batch(
    conn: AsyncConnection,
    *,
    protocol: Protocol,
    source: ImportSource,
    now: datetime,
    status: ImportBatchStatus = BATCH_DONE,
) -> int:
    statement = (
        insert(import_batch)
        .values(
            protocol=protocol,
            source=source.name[:255],
            actor=source.actor,
            format=source.format,
            file_sha256=source.sha256,
            imported=0,
            skipped=0,
            created_at=now,
            status=status,
        )
        .returning(import_batch.c.id)
    )
    return int((await conn.execute(statement)).scalar_one())


async def close_batch(
    conn: AsyncConnection,
    *,
    batch_id: int,
    imported: int,
    skipped: int,
    status: ImportBatchStatus = BATCH_DONE,
) -> None:
    await conn.execute(
        update(import_batch)
        .where(import_batch.c.id == batch_id)
        .values(imported=imported, skipped=skipped, status=status)
    )


async def set_batch_status(
    conn: AsyncConnection, *, batch_id: int, status: ImportBatchStatus
) -> None:
    await conn.execute(
        update(import_batch).where(import_batch.c.id == batch_id).values(status=status)
    )


async def unfinished_batches(conn: AsyncConnection) -> list[UnfinishedBatch]:
    """Batches not `done`: an import in flight, or one interrupted (oldest first)."""
    rows = await conn.execute(
        select(
            import_batch.c.id,
            import_batch.c.protocol,
            import_batch.c.status,
            import_batch.c.imported,
            import_batch.c.created_at,
        )
        .where(import_batch.c.status != BATCH_DONE)
        .order_by(import_batch.c.id)
    )
    return [UnfinishedBatch(*row) for row in rows.all()]


async def delete_batch(conn: AsyncConnection, *, batch_id: int) -> None:
    """An uncommitted batch (its rows removed first); a committed one stays."""
    await conn.execute(
        delete(import_batch).where(
            import_batch.c.id == batch_id, import_batch.c.status == BATCH_IMPORTING
        )
    )


# The rows of an unfinished import: a literal status, so that both planners take the partial
# index ix_address_importing (SQLite proves a partial index usable from literals only).
_IMPORTING = address.c.status == literal_column("'importing'")
_NEXT_IMPORTING = (
    select(address.c.id)
    .where(address.c.import_batch_id == bindparam("p_batch"), _IMPORTING)
    .order_by(address.c.id)
    .limit(bindparam("p_limit"))
    .scalar_subquery()
)


def _batch_is(status: ImportBatchStatus) -> ColumnElement[bool]:
    """Checked in the statement itself: a committed batch's rows are never removed, whatever
    its importer believed (a cancellation can land between a commit and its caller)."""
    return (
        select(import_batch.c.id)
        .where(import_batch.c.id == bindparam("p_batch"), import_batch.c.status == status)
        .exists()
    )


# Each chunk takes the first rows left in the index: those of the chunk before have left it.
_HAND_OVER = (
    update(address)
    .where(address.c.id.in_(_NEXT_IMPORTING), _batch_is(BATCH_COMMITTED))
    .values(status=AVAILABLE)
)
_REMOVE = delete(address).where(address.c.id.in_(_NEXT_IMPORTING), _batch_is(BATCH_IMPORTING))


async def count_importing(conn: AsyncConnection, *, batch_id: int) -> int:
    """Rows of the batch not handed over yet (all it wrote, before its commit)."""
    statement = (
        select(func.count())
        .select_from(address)
        .where(address.c.import_batch_id == batch_id, _IMPORTING)
    )
    return int(await conn.scalar(statement) or 0)


async def hand_over_rows(conn: AsyncConnection, *, batch_id: int, limit: int) -> int:
    """Make up to `limit` of a committed batch's rows available; how many were."""
    result = await conn.execute(_HAND_OVER, {"p_batch": batch_id, "p_limit": limit})
    return int(result.rowcount or 0)


async def remove_rows(conn: AsyncConnection, *, batch_id: int, limit: int) -> int:
    """Delete up to `limit` of an uncommitted batch's rows; how many were."""
    result = await conn.execute(_REMOVE, {"p_batch": batch_id, "p_limit": limit})
    return int(result.rowcount or 0)


async def keys_first_recorded_at(
    conn: AsyncConnection, *, protocol: Protocol, created_at: datetime
) -> list[int]:
    """Master keys recorded by the import that started at `created_at` (one that already
    existed kept its own time)."""
    rows = await conn.execute(
        select(master_key.c.id).where(
            master_key.c.protocol == protocol, master_key.c.created_at == created_at
        )
    )
    return [int(key_id) for key_id in rows.scalars().all()]


async def keys_in_use(conn: AsyncConnection, *, key_ids: list[int]) -> set[int]:
    """Which of these master keys some address points to (one pass over the addresses)."""
    if not key_ids:
        return set()
    rows = await conn.execute(
        select(address.c.master_key_id).distinct().where(address.c.master_key_id.in_(key_ids))
    )
    return {int(key_id) for key_id in rows.scalars().all()}


async def delete_master_keys(conn: AsyncConnection, *, key_ids: list[int]) -> None:
    if key_ids:
        await conn.execute(delete(master_key).where(master_key.c.id.in_(key_ids)))


# What the watcher's address book needs of unfinished imports (chains.watch.address_book).
async def committed_batches(conn: AsyncConnection, *, protocol: Protocol) -> list[int]:
    """Batches whose import committed and whose rows are still being handed over."""
    rows = await conn.execute(
        select(import_batch.c.id).where(
            import_batch.c.protocol == protocol, import_batch.c.status == BATCH_COMMITTED
        )
    )
    return [int(batch_id) for batch_id in rows.scalars().all()]


async def importing_rows_after(
    conn: AsyncConnection, *, batch_id: int, after_id: int, limit: int
) -> list[tuple[int, str]]:
    """(id, hex20) of a batch's rows not handed over yet, by id, after `after_id`."""
    rows = await conn.execute(
        select(address.c.id, address.c.hex20)
        .where(address.c.import_batch_id == batch_id, _IMPORTING, address.c.id > after_id)
        .order_by(address.c.id)
        .limit(limit)
    )
    return [(int(row[0]), str(row[1])) for row in rows.all()]


async def count_uncommitted(conn: AsyncConnection, *, protocol: Protocol) -> int:
    """Rows of the protocol's imports in flight, not committed: none of them is the pool's."""
    in_flight = select(import_batch.c.id).where(
        import_batch.c.protocol == protocol, import_batch.c.status == BATCH_IMPORTING
    )
    statement = (
        select(func.count())
        .select_from(address)
        .where(address.c.import_batch_id.in_(in_flight), _IMPORTING)
    )
    return int(await conn.scalar(statement) or 0)


async def count_batch(conn: AsyncConnection, *, batch_id: int) -> int:
    """How many addresses this batch added: the ones already in the pool kept their batch."""
    statement = (
        select(func.count()).select_from(address).where(address.c.import_batch_id == batch_id)
    )
    return int(await conn.scalar(statement) or 0)


async def master_key_ids(
    conn: AsyncConnection,
    *,
    protocol: Protocol,
    keys: Iterable[str | None],
    fingerprints: Mapping[str, str],
    now: datetime,
) -> dict[str, int]:
    """Each extended public key once in `master_key`; returns key → id.

    A key without a BIP32 fingerprint from the caller gets a SHA-256 prefix instead.
    """
    wanted = sorted(k for k in keys if k)
    if not wanted:
        return {}
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    rows = [
        {
            "protocol": protocol,
            "public_key": k,
            "fingerprint": fingerprints.get(k) or _fingerprint(k),
            "created_at": now,
        }
        for k in wanted
    ]
    await conn.execute(dialect_insert(master_key).on_conflict_do_nothing(), rows)
    found = await conn.execute(
        select(master_key.c.public_key, master_key.c.id).where(
            master_key.c.protocol == protocol, master_key.c.public_key.in_(wanted)
        )
    )
    return {key: key_id for key, key_id in found.all()}


def _fingerprint(public_key: str) -> str:
    return hashlib.sha256(public_key.encode("ascii", "replace")).hexdigest()[:16]
