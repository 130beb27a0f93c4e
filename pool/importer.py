"""Address import: validate everything first, then write in bulk (issue 3).

All-or-nothing by default: one bad row and nothing is written, every bad row is listed.
Anything that looks like a private key refuses the whole import, even with `skip_invalid`:
the file must be cleaned, and the secret is never echoed. Duplicates inside the input and
addresses already in the pool are skipped and counted, so re-importing changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.domain import AddressParser, Protocol
from pool.errors import ValidationFailed
from pool.import_formats import RawRow
from pool.repository import imports as repo
from pool.repository.addresses import (
    AVAILABLE,
    count_existing,
    insert_new_addresses,
    refresh_statistics,
)
from pool.repository.events import insert_audit
from pool.secret_detection import REDACTED, refusal, secret_kind

CHUNK = 50_000
ANALYZE_AFTER = 1_000  # imported rows: a smaller import does not change how to plan
MAX_VALUE_SHOWN = 100
MAX_DERIVATION_INDEX = 2**31 - 1  # non-hardened BIP32 indices
PUBLIC_KEY_PREFIXES = ("xpub", "tpub", "ypub", "zpub", "upub", "vpub", "Ypub", "Zpub")

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True, slots=True)
class ImportProblem:
    line: int
    value: str
    message: str

    def as_detail(self) -> dict[str, Any]:
        return {"line": self.line, "value": self.value, "message": self.message}


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
    problems: list[ImportProblem] = field(default_factory=list)
    secrets: list[ImportProblem] = field(default_factory=list)


@dataclass(slots=True)
class ImportReport:
    protocol: Protocol
    imported: int = 0
    duplicates_in_input: int = 0
    already_in_pool: int = 0
    invalid: list[ImportProblem] = field(default_factory=list)
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
            "invalid": [p.as_detail() for p in self.invalid],
            "batchId": self.batch_id,
            "dryRun": self.dry_run,
        }


@dataclass(frozen=True, slots=True)
class ImportSource:
    """Where the rows came from, for the import batch and the audit log."""

    name: str
    actor: str
    format: str | None = None
    sha256: str | None = None


def validate_rows(
    rows: Iterable[RawRow],
    *,
    protocol: Protocol,
    parser: AddressParser,
    progress: Progress | None = None,
) -> Validation:
    """Pure and CPU-bound: callers on an event loop run it in a thread."""
    result = Validation()
    seen: set[str] = set()
    for count, row in enumerate(rows, start=1):
        if progress is not None and count % CHUNK == 0:
            progress("validated", count, 0)
        secret = _secret_in(row)
        if secret is not None:
            result.secrets.append(ImportProblem(row.line, REDACTED, refusal(secret)))
            continue
        try:
            valid = _validate_row(row, protocol=protocol, parser=parser)
        except ValidationFailed as exc:
            result.problems.append(
                ImportProblem(row.line, row.address[:MAX_VALUE_SHOWN], exc.message)
            )
            continue
        if valid.hex20 in seen:
            result.duplicates += 1
            continue
        seen.add(valid.hex20)
        result.rows.append(valid)
    return result


def _secret_in(row: RawRow) -> str | None:
    for cell in row.cells():
        kind = secret_kind(cell)
        if kind is not None:
            return kind
    return None


def _validate_row(row: RawRow, *, protocol: Protocol, parser: AddressParser) -> ValidRow:
    if row.problem is not None:
        raise ValidationFailed(row.problem)
    if not row.address:
        raise ValidationFailed("no address in this row")
    if row.protocol is not None and row.protocol.lower() != protocol:
        raise ValidationFailed(
            f"the row's protocol is {row.protocol!r} but this import is for {protocol!r}"
        )
    parsed = parser(row.address)
    return ValidRow(
        parsed.text,
        parsed.hex20,
        _derivation_index(row.derivation_index),
        _master_public_key(row.master_public_key),
        row.line,
    )


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
    if validation.secrets:
        raise ValidationFailed(
            f"{len(validation.secrets)} row(s) hold what looks like a private key; "
            "addrpool never takes private keys: nothing was imported",
            code="PRIVATE_KEY_REFUSED",
            details=[p.as_detail() for p in validation.secrets],
        )
    if validation.problems and not skip_invalid:
        raise ValidationFailed(
            f"{len(validation.problems)} invalid row(s); nothing was imported",
            code="INVALID_ADDRESS",
            details=[p.as_detail() for p in validation.problems],
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
    """`fingerprints`: BIP32 fingerprints of the rows' master keys, computed by the caller."""
    refuse_if_unusable(validation, skip_invalid=skip_invalid)
    report = ImportReport(
        protocol,
        duplicates_in_input=validation.duplicates,
        invalid=validation.problems,
        dry_run=dry_run,
    )
    hex20s = [row.hex20 for row in validation.rows]
    if dry_run:
        report.already_in_pool = await count_existing(conn, protocol=protocol, hex20s=hex20s)
        report.imported = len(hex20s) - report.already_in_pool
        return report
    batch_id = await repo.open_batch(conn, protocol=protocol, source=source, now=now)
    master_keys = await repo.master_key_ids(
        conn,
        protocol=protocol,
        keys={r.master_public_key for r in validation.rows},
        fingerprints=fingerprints or {},
        now=now,
    )
    for start in range(0, len(validation.rows), CHUNK):
        chunk = validation.rows[start : start + CHUNK]
        await insert_new_addresses(conn, _records(protocol, chunk, batch_id, master_keys, now))
        if progress is not None:
            progress("written", start + len(chunk), len(validation.rows))
    report.imported = await repo.count_batch(conn, batch_id=batch_id)
    report.already_in_pool = len(validation.rows) - report.imported
    report.batch_id = batch_id
    if report.imported >= ANALYZE_AFTER:
        await refresh_statistics(conn)
    await _close_batch(conn, report, batch_id=batch_id, source=source, now=now)
    return report


def _records(
    protocol: Protocol,
    chunk: Sequence[ValidRow],
    batch_id: int,
    master_keys: dict[str, int],
    now: datetime,
) -> list[dict[str, Any]]:
    return [
        {
            "protocol": protocol,
            "address": row.text,
            "hex20": row.hex20,
            "status": AVAILABLE,
            "import_batch_id": batch_id,
            "master_key_id": master_keys.get(row.master_public_key or ""),
            "derivation_index": row.derivation_index,
            "created_at": now,
        }
        for row in chunk
    ]


async def _close_batch(
    conn: AsyncConnection,
    report: ImportReport,
    *,
    batch_id: int,
    source: ImportSource,
    now: datetime,
) -> None:
    await repo.close_batch(
        conn, batch_id=batch_id, imported=report.imported, skipped=report.skipped
    )
    await insert_audit(
        conn,
        actor=source.actor,
        action="address.import",
        subject=f"import_batch:{batch_id}",
        details={
            "protocol": report.protocol,
            "source": source.name,
            "format": source.format,
            "sha256": source.sha256,
            "imported": report.imported,
            "duplicates": report.skipped,
            "invalid": len(report.invalid),
        },
        now=now,
    )
