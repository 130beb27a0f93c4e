"""SQL for import batches and master public keys."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import address, import_batch, master_key
from pool.vocabulary import Protocol


@dataclass(frozen=True, slots=True)
class ImportSource:
    """Where the rows came from, for the import batch and the audit log (defined here, beside
    the SQL that records it, because a repository imports no service)."""

    name: str
    actor: str
    format: str | None = None
    sha256: str | None = None


async def open_batch(
    conn: AsyncConnection, *, protocol: Protocol, source: ImportSource, now: datetime
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
        )
        .returning(import_batch.c.id)
    )
    return int((await conn.execute(statement)).scalar_one())


async def close_batch(conn: AsyncConnection, *, batch_id: int, imported: int, skipped: int) -> None:
    await conn.execute(
        update(import_batch)
        .where(import_batch.c.id == batch_id)
        .values(imported=imported, skipped=skipped)
    )


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


async def record_master_key(
    conn: AsyncConnection, *, protocol: Protocol, public_key: str, fingerprint: str, now: datetime
) -> int:
    """The key's row (created on first use), keeping the fingerprint it was first given."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    values = {
        "protocol": protocol,
        "public_key": public_key,
        "fingerprint": fingerprint,
        "created_at": now,
    }
    await conn.execute(dialect_insert(master_key).on_conflict_do_nothing(), values)
    statement = select(master_key.c.id).where(
        master_key.c.protocol == protocol, master_key.c.public_key == public_key
    )
    return int((await conn.execute(statement)).scalar_one())
