"""Import addresses derived from an account's extended public key.

Derivation itself lives in `chains.hd` (pool imports no sibling): callers derive, this writes
the result as an ordinary import batch whose rows carry the key and their indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.import_repository import record_master_key
from pool.addresses.importer import (
    ImportReport,
    ImportSource,
    Progress,
    Validation,
    ValidRow,
    write_validated,
)
from pool.vocabulary import ParsedAddress, Protocol


async def import_derived(
    conn: AsyncConnection,
    *,
    protocol: Protocol,
    public_key: str,
    fingerprint: str,
    derived: Sequence[tuple[int, ParsedAddress]],
    source: ImportSource,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    await record_master_key(
        conn, protocol=protocol, public_key=public_key, fingerprint=fingerprint, now=now
    )
    validation = Validation(
        rows=[
            ValidRow(address.text, address.hex20, index, public_key) for index, address in derived
        ]
    )
    return await write_validated(
        conn,
        protocol=protocol,
        validation=validation,
        source=source,
        now=now,
        dry_run=dry_run,
        progress=progress,
    )
