"""Address import, one address per line (an optional `address` header line).

All-or-nothing by default: one bad line and nothing is written, every bad line is listed.
Duplicates inside the input and addresses already in the pool are skipped and counted, so
re-importing the same file changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.domain import AddressParser, ParsedAddress, Protocol
from pool.errors import ValidationFailed
from pool.repository.addresses import AVAILABLE, existing_hex20s, insert_new_addresses
from pool.repository.events import insert_audit
from pool.repository.imports import close_batch, open_batch

CHUNK = 5_000
MAX_VALUE_SHOWN = 100


@dataclass(frozen=True, slots=True)
class ImportProblem:
    line: int
    value: str
    message: str


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


def parse_lines(
    lines: Iterable[str], *, parser: AddressParser
) -> tuple[list[ParsedAddress], int, list[ImportProblem]]:
    """Valid addresses in input order (first occurrence kept), duplicates counted, problems."""
    seen: set[str] = set()
    parsed: list[ParsedAddress] = []
    duplicates = 0
    problems: list[ImportProblem] = []
    for number, raw in enumerate(lines, start=1):
        value = raw.strip().lstrip("\ufeff").strip()
        if not value or (number == 1 and value.lower() == "address"):
            continue
        try:
            address = parser(value)
        except ValidationFailed as exc:
            problems.append(ImportProblem(number, value[:MAX_VALUE_SHOWN], exc.message))
            continue
        if address.hex20 in seen:
            duplicates += 1
            continue
        seen.add(address.hex20)
        parsed.append(address)
    return parsed, duplicates, problems


async def import_addresses(
    conn: AsyncConnection,
    *,
    protocol: Protocol,
    lines: Iterable[str],
    parser: AddressParser,
    source: str,
    actor: str,
    now: datetime,
    skip_invalid: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    parsed, duplicates, problems = parse_lines(lines, parser=parser)
    report = ImportReport(
        protocol, duplicates_in_input=duplicates, invalid=problems, dry_run=dry_run
    )
    if problems and not skip_invalid:
        raise ValidationFailed(
            f"{len(problems)} invalid line(s); nothing was imported",
            code="INVALID_ADDRESS",
            details=[{"line": p.line, "value": p.value, "message": p.message} for p in problems],
        )
    if dry_run:
        report.already_in_pool = await _count_existing(conn, protocol, parsed)
        report.imported = len(parsed) - report.already_in_pool
        return report
    batch_id = await open_batch(conn, protocol=protocol, source=source, actor=actor, now=now)
    for start in range(0, len(parsed), CHUNK):
        chunk = parsed[start : start + CHUNK]
        report.imported += await insert_new_addresses(conn, _rows(chunk, batch_id, now))
    report.already_in_pool = len(parsed) - report.imported
    report.batch_id = batch_id
    await _close_batch(conn, report, batch_id=batch_id, actor=actor, now=now)
    return report


async def _count_existing(
    conn: AsyncConnection, protocol: Protocol, parsed: Sequence[ParsedAddress]
) -> int:
    existing = 0
    for start in range(0, len(parsed), CHUNK):
        chunk = [a.hex20 for a in parsed[start : start + CHUNK]]
        existing += len(await existing_hex20s(conn, protocol=protocol, hex20s=chunk))
    return existing


def _rows(chunk: Sequence[ParsedAddress], batch_id: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "protocol": a.protocol,
            "address": a.text,
            "hex20": a.hex20,
            "status": AVAILABLE,
            "import_batch_id": batch_id,
            "created_at": now,
        }
        for a in chunk
    ]


async def _close_batch(
    conn: AsyncConnection, report: ImportReport, *, batch_id: int, actor: str, now: datetime
) -> None:
    await close_batch(conn, batch_id=batch_id, imported=report.imported, skipped=report.skipped)
    await insert_audit(
        conn,
        actor=actor,
        action="address.import",
        subject=f"import_batch:{batch_id}",
        details={
            "protocol": report.protocol,
            "imported": report.imported,
            "skipped": report.skipped,
            "invalid": len(report.invalid),
        },
        now=now,
    )
