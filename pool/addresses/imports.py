"""Importing addresses: from rows (a file, a request) or derived from an account key.

The use cases the API (`api/routes/pool.py`) and the CLI (`scripts/cli/imports.py`) share;
each caller keeps only its own input and output shape. What only the chains package knows —
parsing a protocol's addresses, reading an extended public key, deriving — the callers hand
in (pool imports no sibling).

An import is checked before the database is touched (`check_rows`, CPU-bound, in a thread),
so the CLI can refuse a bad file before it opens a database; then written. PostgreSQL: in one
write transaction, run again from the start if a concurrent writer won (`Database.run_write`);
its writers do not hold up binds. SQLite, whose one writer they would: in short transactions, the
rows not the pool's until the import commits (pool.addresses.staged_import), one import at a
time (pool.kit.import_lock), each first finishing or removing what an interrupted one left
(pool.addresses.import_recovery). Either way all or nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.import_formats import RawRow
from pool.addresses.import_recovery import recover_imports
from pool.addresses.importer import (
    ImportReport,
    ImportSource,
    Progress,
    Validation,
    count_dry_run,
    new_report,
    refuse_if_unusable,
    validate_rows,
    write_validated,
)
from pool.addresses.staged_import import import_in_stages
from pool.addresses.xpub_import import derived_rows
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.import_lock import holding_import_lock
from pool.vocabulary import AddressParser, ParsedAddress, Protocol

# Called once when the import has to wait for another import of the database to end.
OnWait = Callable[[], None]

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
    on_wait: OnWait | None = None,
) -> ImportReport:
    """Write checked rows as one import batch (or, `dry_run`, count what it would import)."""
    return await write_import(
        db,
        checked.validation,
        protocol=protocol,
        source=source,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
        progress=progress,
        fingerprints=checked.fingerprints,
        on_wait=on_wait,
    )


async def write_import(
    db: Database,
    validation: Validation,
    *,
    protocol: Protocol,
    source: ImportSource,
    skip_invalid: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    fingerprints: Mapping[str, str] | None = None,
    on_wait: OnWait | None = None,
) -> ImportReport:
    refuse_if_unusable(validation, skip_invalid=skip_invalid)
    if dry_run:
        async with db.read() as conn:
            report = new_report(protocol, validation, dry_run=True)
            return await count_dry_run(conn, report, validation)
    if db.is_sqlite:
        async with holding_import_lock(db, on_wait=on_wait):
            await recover_imports(db)
            return await import_in_stages(
                db,
                protocol=protocol,
                validation=validation,
                source=source,
                progress=progress,
                fingerprints=fingerprints,
            )

    async def work(conn: AsyncConnection) -> ImportReport:
        return await write_validated(
            conn,
            protocol=protocol,
            validation=validation,
            source=source,
            now=utc_now(),
            skip_invalid=skip_invalid,
            progress=progress,
            fingerprints=fingerprints,
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
    on_wait: OnWait | None = None,
) -> ImportReport:
    """Write addresses derived from `account` as an import batch whose rows carry the key and
    their indices (the key recorded with its BIP32 fingerprint)."""
    return await write_import(
        db,
        derived_rows(derived, account.public_key),
        protocol=protocol,
        source=ImportSource(f"xpub:{account.fingerprint}", actor, "xpub"),
        dry_run=dry_run,
        progress=progress,
        fingerprints={account.public_key: account.fingerprint},
        on_wait=on_wait,
    )
