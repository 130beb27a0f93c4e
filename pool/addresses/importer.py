"""Address import: validate everything first, then write in bulk.

All-or-nothing by default: one bad row and nothing is written; the report lists the first bad
rows and counts them all by kind (import_problems). Anything that looks like a private key
refuses the whole import, even with `skip_invalid`: the file must be cleaned, and the secret is
never echoed; that screen runs where the input is read (read_rows, the API's request schema),
before any row gets here. Duplicates inside the input and addresses already in the pool are
skipped and counted, so re-importing changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses import import_repository as repo
from pool.addresses.import_formats import RawRow
from pool.addresses.import_problems import ImportProblem, Problems, excerpt
from pool.addresses.import_repository import ImportSource as ImportSource  # callers' import
from pool.addresses.insert_repository import (
    insert_new_addresses,
    insert_staged,
    refresh_statistics,
    stage_new_addresses,
)
from pool.addresses.repository import count_existing
from pool.kit.errors import ValidationFailed
from pool.vocabulary import AVAILABLE, AddressParser, AddressStatus, Protocol
from pool.webhooks.events_repository import insert_audit

CHUNK = 50_000
PROGRESS_EVERY = 10_000  # validated rows between progress reports (a terminal's bar)
ANALYZE_AFTER = 1_000  # imported rows: a smaller import does not change how to plan
MAX_DERIVATION_INDEX = 2**31 - 1  # non-hardened BIP32 indices
PUBLIC_KEY_PREFIXES = ("xpub", "tpub", "ypub", "zpub", "upub", "vpub", "Ypub", "Zpub")

Progress = Callable[[str, int, int], None]  # (phase, done, total)
T = TypeVar("T")


class _RowRefused(Exception):
    """Why one row cannot be imported: a kind to count it under and a message for a person."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class ValidRow:
    text: str
    hex20: str
    derivation_index: int | None
    master_public_key: str | None
    line: int = 0  # where it came from, for problems found after validation


@dataclass(slots=True)
class Validation:
    rows: list[ValidRow] = field(default_factory=list)
    duplicates: int = 0
    problems: Problems = field(default_factory=Problems)


@dataclass(slots=True)
class ImportReport:
    protocol: Protocol
    imported: int = 0
    duplicates_in_input: int = 0
    already_in_pool: int = 0
    invalid: Problems = field(default_factory=Problems)
    dry_run: bool = False
    batch_id: int | None = None

    @property
    def skipped(self) -> int:
        return self.duplicates_in_input + self.already_in_pool

    def summary(self) -> dict[str, Any]:
        """The camelCase summary the API returns and `import --json` prints."""
        return {
            "protocol": self.protocol,
            "imported": self.imported,
            "duplicates": self.skipped,
            "duplicatesInInput": self.duplicates_in_input,
            "alreadyInPool": self.already_in_pool,
            "invalid": self.invalid.details(),  # the first MAX_LISTED
            "invalidCount": self.invalid.count,
            "invalidByKind": self.invalid.by_kind,
            "batchId": self.batch_id,
            "dryRun": self.dry_run,
        }


def validate_rows(
    rows: Iterable[RawRow],
    *,
    protocol: Protocol,
    parser: AddressParser,
    progress: Progress | None = None,
) -> Validation:
    """Pure and CPU-bound: callers on an event loop run it in a thread.

    `rows` come from read_rows or a request screened by its schema: secrets were refused there.
    """
    result = Validation()
    seen: set[str] = set()
    for count, row in enumerate(rows, start=1):
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress("validated", count, 0)
        try:
            valid = _validate_row(row, protocol=protocol, parser=parser)
        except _RowRefused as refused:
            result.problems.append(
                ImportProblem(row.line, row.address, refused.message, refused.kind)
            )
            continue
        if valid.hex20 in seen:
            result.duplicates += 1
            continue
        seen.add(valid.hex20)
        result.rows.append(valid)
    return result


def _validate_row(row: RawRow, *, protocol: Protocol, parser: AddressParser) -> ValidRow:
    if row.problem is not None:
        raise _RowRefused("too_many_fields", row.problem)
    if not row.address:
        raise _RowRefused("missing_address", "no address in this row")
    if row.protocol is not None and row.protocol.lower() != protocol:
        raise _RowRefused(
            "protocol_mismatch",
            f"the row's protocol is {excerpt(row.protocol)!r} but this import is for {protocol!r}",
        )
    parsed = _checked("invalid_address", parser, row.address)
    return ValidRow(
        parsed.text,
        parsed.hex20,
        _checked("invalid_derivation_index", _derivation_index, row.derivation_index),
        _checked("invalid_master_public_key", _master_public_key, row.master_public_key),
        row.line,
    )


def _checked(kind: str, check: Callable[[Any], T], value: Any) -> T:
    try:
        return check(value)
    except ValidationFailed as exc:
        raise _RowRefused(kind, exc.message) from exc


def _derivation_index(value: str | None) -> int | None:
    if value is None:
        return None
    # ASCII digits only ("²" is a digit to isdigit() but not to int()), and no more of them
    # than the largest index has: int() refuses thousands of digits with a ValueError.
    digits = value.lstrip("0")
    if (
        not (value.isascii() and value.isdigit())
        or len(digits) > len(str(MAX_DERIVATION_INDEX))
        or int(value) > MAX_DERIVATION_INDEX
    ):
        raise ValidationFailed(
            f"derivation_index must be a whole number from 0 to {MAX_DERIVATION_INDEX}"
        )
    return int(value)


def _master_public_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(PUBLIC_KEY_PREFIXES) or not 100 <= len(value) <= 120:
        raise ValidationFailed("master_public_key must be an extended public key (xpub/tpub/…)")
    return value


async def import_addresses(
    conn: AsyncConnection,
    *,
    protocol: Protocol,
    rows: Iterable[RawRow],
    parser: AddressParser,
    source: ImportSource,
    now: datetime,
    skip_invalid: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    validation = validate_rows(rows, protocol=protocol, parser=parser)
    return await write_validated(
        conn,
        protocol=protocol,
        validation=validation,
        source=source,
        now=now,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
    )


def refuse_if_unusable(validation: Validation, *, skip_invalid: bool) -> None:
    problems = validation.problems
    if problems.count and not skip_invalid:
        listed = "" if problems.count <= len(problems.listed) else "; the first are listed"
        raise problems.error(
            f"{problems.count} invalid row(s); nothing was imported{listed}",
            code="INVALID_ADDRESS",
        )


async def write_validated(
    conn: AsyncConnection,
    *,
    protocol: Protocol,
    validation: Validation,
    source: ImportSource,
    now: datetime,
    skip_invalid: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> ImportReport:
    """The whole import in the caller's transaction (PostgreSQL's way, and any caller's that
    owns a transaction); a SQLite import of a running pool goes through
    pool.addresses.staged_import instead. `fingerprints`: BIP32 fingerprints of the rows'
    master keys, computed by the caller."""
    refuse_if_unusable(validation, skip_invalid=skip_invalid)
    report = new_report(protocol, validation, dry_run=dry_run)
    if dry_run:
        return await count_dry_run(conn, report, validation)
    batch_id = await repo.open_batch(conn, protocol=protocol, source=source, now=now)
    master_keys = await repo.master_key_ids(
        conn,
        protocol=protocol,
        keys={r.master_public_key for r in validation.rows},
        fingerprints=fingerprints or {},
        now=now,
    )
    if conn.dialect.name == "postgresql":
        report.imported = await _write_staged(
            conn,
            validation.rows,
            partial(values, protocol, batch_id=batch_id, master_keys=master_keys, now=now),
            progress,
        )
    else:
        for start in range(0, len(validation.rows), CHUNK):
            chunk = validation.rows[start : start + CHUNK]
            await insert_new_addresses(conn, records(protocol, chunk, batch_id, master_keys, now))
            if progress is not None:
                progress("written", start + len(chunk), len(validation.rows))
        report.imported = await repo.count_batch(conn, batch_id=batch_id)
    report.already_in_pool = len(validation.rows) - report.imported
    report.batch_id = batch_id
    if report.imported >= ANALYZE_AFTER:
        await refresh_statistics(conn)
    await repo.close_batch(
        conn, batch_id=batch_id, imported=report.imported, skipped=report.skipped
    )
    await record_audit(conn, report, source=source, now=now)
    return report


async def _write_staged(
    conn: AsyncConnection,
    rows: Sequence[ValidRow],
    to_values: Callable[[Sequence[ValidRow]], list[tuple[Any, ...]]],
    progress: Progress | None,
) -> int:
    """PostgreSQL: the whole input COPYed into a staging table a chunk at a time, then added
    to the pool in one statement in address order (insert_staged says why); returns how many
    were added."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        await stage_new_addresses(conn, to_values(chunk))
        if progress is not None:  # the last report comes before the insert: seconds a million
            progress("written", start + len(chunk), len(rows))
    return await insert_staged(conn)


def new_report(protocol: Protocol, validation: Validation, *, dry_run: bool) -> ImportReport:
    return ImportReport(
        protocol,
        duplicates_in_input=validation.duplicates,
        invalid=validation.problems,
        dry_run=dry_run,
    )


async def count_dry_run(
    conn: AsyncConnection, report: ImportReport, validation: Validation
) -> ImportReport:
    """What the import would add: its rows less those already in the pool (read only)."""
    hex20s = [row.hex20 for row in validation.rows]
    report.already_in_pool = await count_existing(conn, protocol=report.protocol, hex20s=hex20s)
    report.imported = len(hex20s) - report.already_in_pool
    return report


def records(
    protocol: Protocol,
    chunk: Sequence[ValidRow],
    batch_id: int,
    master_keys: dict[str, int],
    now: datetime,
    status: AddressStatus = AVAILABLE,
) -> list[dict[str, Any]]:
    return [
        {
            "protocol": protocol,
            "address": row.text,
            "hex20": row.hex20,
            "status": status,
            "import_batch_id": batch_id,
            "master_key_id": master_keys.get(row.master_public_key or ""),
            "derivation_index": row.derivation_index,
            "created_at": now,
        }
        for row in chunk
    ]


def values(
    protocol: Protocol,
    chunk: Sequence[ValidRow],
    *,
    batch_id: int,
    master_keys: dict[str, int],
    now: datetime,
) -> list[tuple[Any, ...]]:
    """`records` as COPY takes them on PostgreSQL: tuples in IMPORT_COLUMNS' order."""
    return [
        (
            protocol,
            row.text,
            row.hex20,
            AVAILABLE,
            batch_id,
            master_keys.get(row.master_public_key or ""),
            row.derivation_index,
            now,
        )
        for row in chunk
    ]


async def record_audit(
    conn: AsyncConnection, report: ImportReport, *, source: ImportSource, now: datetime
) -> None:
    """The import in the audit log, in the transaction that makes it the pool's."""
    await insert_audit(
        conn,
        actor=source.actor,
        action="address.import",
        subject=f"import_batch:{report.batch_id}",
        details={
            "protocol": report.protocol,
            "source": source.name,
            "format": source.format,
            "sha256": source.sha256,
            "imported": report.imported,
            "duplicates": report.skipped,
            "invalid": report.invalid.count,
            **({"reason": source.reason} if source.reason else {}),
        },
        now=now,
    )
