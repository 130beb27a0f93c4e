"""Importing addresses: from rows (a file, a request) or derived from an account key.

The use cases the API (`api/routes/pool.py`) and the CLI (`scripts/cli/imports.py`) share;
each caller keeps only its own input and output shape. What only the chains package knows —
parsing a protocol's addresses, reading an extended public key, deriving — the callers hand
in (pool imports no sibling).

An import is checked before the database is touched (`check_rows`, CPU-bound, in a thread),
so the CLI can refuse a bad file before it opens a database; then written in one write
transaction, run again from the start if a concurrent writer won (`Database.run_write`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.import_formats import RawRow
from pool.addresses.importer import (
    ImportReport,
    ImportSource,
    Progress,
    Validation,
    validate_rows,
    write_validated,
)
from pool.addresses.xpub_import import import_derived
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.vocabulary import AddressParser, ParsedAddress, Protocol

# chains.verify.check_master_keys: each row's master key -> its BIP32 fingerprint.
MasterKeyCheck = Callable[[Validation], dict[str, str]]
# chains.verify.verify_import_rows for a branch: rows that name a key must derive from it.
RowVerification = Callable[[Validation], None]


@dataclass(frozen=True, slots=True)
class CheckedRows:
    validation: Validation
    fingerprints: Mapping[str, str]


async def check_rows(
    rows: Iterable[RawRow],
    *,
    protocol: Protocol,
    parser: AddressParser,
    master_keys: MasterKeyCheck,
    verify: RowVerification | None = None,
    progress: Progress | None = None,
) -> CheckedRows:
    """Validate the rows and read their master keys, off the event loop: a large import keeps
    no other request waiting."""

    def check() -> CheckedRows:
        validation = validate_rows(rows, protocol=protocol, parser=parser, progress=progress)
        fingerprints = master_keys(validation)
        if verify is not None:
            verify(validation)
        return CheckedRows(validation, fingerprints)

    return await asyncio.to_thread(check)


async def import_file(
    db: Database,
    checked: CheckedRows,
    *,
    protocol: Protocol,
    source: ImportSource,
    skip_invalid: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Write checked rows as one import batch (or, `dry_run`, count what it would import)."""

    async def work(conn: AsyncConnection) -> ImportReport:
        return await write_validated(
            conn,
            protocol=protocol,
            validation=checked.validation,
            source=source,
            now=utc_now(),
            skip_invalid=skip_invalid,
            dry_run=dry_run,
            progress=progress,
            fingerprints=checked.fingerprints,
        )

    return await db.run_write(work)


@dataclass(frozen=True, slots=True)
class AccountKey:
    """An account's extended public key, as `chains.hd` reads it."""

    public_key: str  # serialized
    fingerprint: str


async def import_xpub(
    db: Database,
    *,
    protocol: Protocol,
    account: AccountKey,
    derived: Sequence[tuple[int, ParsedAddress]],
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Write addresses derived from `account` as an import batch whose rows carry the key and
    their indices."""
    source = ImportSource(f"xpub:{account.fingerprint}", actor, "xpub")

    async def work(conn: AsyncConnection) -> ImportReport:
        return await import_derived(
            conn,
            protocol=protocol,
            public_key=account.public_key,
            fingerprint=account.fingerprint,
            derived=derived,
            source=source,
            now=utc_now(),
            dry_run=dry_run,
            progress=progress,
        )

    return await db.run_write(work)
