"""`addrpool import`: addresses from a file ('-' for stdin) or derived from an xpub."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from chains.codec import address_parser
from chains.hd import ExtendedPublicKey, derive_addresses, parse_extended_public_key
from chains.verify import check_master_keys, verify_import_rows
from pool.addresses import imports
from pool.addresses.import_formats import RawRow, decode_import, detect_format, read_rows
from pool.addresses.importer import ImportReport, ImportSource, Progress
from pool.addresses.imports import AccountKey
from pool.kit.config import load_settings
from pool.kit.db import Database
from pool.kit.errors import AddrpoolError, ConfigurationError, ValidationFailed
from pool.vocabulary import PROTOCOLS, ParsedAddress, Protocol
from scripts.cli.database import actor, opened_database
from scripts.cli.output import Output, ProgressBar, more_problems

DERIVE_CHUNK = 10_000
# A terminal's worth of problem rows, and a small --json: the API lists up to
# pool.addresses.import_problems.MAX_LISTED (100) for programs; both count every problem.
CLI_LISTED = 20
_PROTOCOL_NAMES = {"evm": "EVM", "tron": "Tron"}
WAITING = "waiting for another import into this database to finish"


def _read_input(name: str) -> tuple[bytes, str]:
    if name == "-":
        return sys.stdin.buffer.read(), "stdin"
    path = _existing_file(name)
    return path.read_bytes(), str(path)


def _existing_file(name: str) -> Path:
    path = Path(name)
    if path.is_dir():
        raise ConfigurationError(f"{name} is a directory: name an address file ('-' for stdin)")
    if not path.is_file():
        raise ConfigurationError(f"no such file: {name}")
    return path


async def import_file(args: argparse.Namespace, out: Output) -> int:
    with _collector_paused():
        if args.xpub is not None:
            return await import_xpub(args, out)
        if not args.files:
            raise ConfigurationError("name a file to import ('-' for stdin), or use --xpub")
        if len(args.files) > 1:
            return await import_files(args, out)
        return await _import_one(args, out)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the command (a process of its own): validation makes
    millions of small objects that hold no cycles, and every collection walked them all
    (docs/performance.md). Reference counting still frees whatever is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _import_one(args: argparse.Namespace, out: Output) -> int:
    bar = ProgressBar.for_terminal(enabled=not out.as_json)
    try:
        checked, source = await _checked_file(args, args.files[0], bar, progress=bar.update)
        async with opened_database(load_settings()) as db:
            report = await _write(db, args, checked, source, bar)
    finally:
        bar.finish()
    out.result(import_summary(report), import_text(report))
    return 0


async def _checked_file(
    args: argparse.Namespace, name: str, bar: ProgressBar, *, progress: Progress
) -> tuple[imports.CheckedRows, ImportSource]:
    """A file read, screened and validated (off the event loop), holding its text only until
    its rows are read: a million-line file keeps only the checked rows in memory."""
    rows, source = _rows_of(name, args.format, bar)
    verify = None
    if args.verify:
        verify = partial(verify_import_rows, protocol=args.protocol, branch=args.branch)
    checked = await imports.check_rows(
        rows,
        protocol=args.protocol,
        parser=address_parser(args.protocol),
        master_keys=check_master_keys,
        verify=verify,
        progress=progress,
    )
    return checked, source


async def _write(
    db: Database,
    args: argparse.Namespace,
    checked: imports.CheckedRows,
    source: ImportSource,
    bar: ProgressBar,
) -> ImportReport:
    try:
        return await imports.import_file(
            db,
            checked,
            protocol=args.protocol,
            source=source,
            skip_invalid=args.skip_invalid,
            dry_run=args.dry_run,
            progress=bar.update,
            on_wait=partial(bar.note, WAITING),
        )
    except ValidationFailed as exc:
        raise shortened(exc, args.protocol) from None


async def import_files(args: argparse.Namespace, out: Output) -> int:
    """Several files, one import (one batch, all or nothing) each, in the order named.

    The next file is read and validated (in a thread) while the one before is written, so on
    PostgreSQL this process validates while the server inserts (docs/performance.md).
    Every name is checked before anything is written; the first file refused stops the
    command, the files before it staying imported. Two files' rows are in memory at a time.
    """
    names = _distinct_files(args.files)
    quiet = ProgressBar(enabled=False)
    abandon = _Abandon()
    imported: list[tuple[str, ImportReport]] = []

    def check(name: str) -> asyncio.Task[tuple[imports.CheckedRows, ImportSource]]:
        return asyncio.create_task(_checked_file(args, name, quiet, progress=abandon))

    pending = check(names[0])
    try:
        async with opened_database(load_settings()) as db:
            for position, name in enumerate(names):
                with _refusal_naming(name, imported, len(names) - position - 1):
                    checked, source = await pending
                    if position + 1 < len(names):
                        pending = check(names[position + 1])
                    report = await _write(db, args, checked, source, quiet)
                imported.append((name, report))
                if not out.as_json:
                    print(f"{name}: {import_text(report)}", flush=True)
    finally:
        abandon.now = True
        await asyncio.gather(pending, return_exceptions=True)  # the thread ends at its next report
    out.result(files_summary(imported), files_text(imported))
    return 0


def _distinct_files(names: Sequence[str]) -> list[str]:
    """Several names: each an existing file (stdin only alone), none twice."""
    for name in names:
        if name == "-":
            raise ConfigurationError("stdin ('-') is imported alone, not beside files")
        _existing_file(name)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigurationError(f"named more than once: {', '.join(repeated)}")
    return list(names)


class _Abandoned(Exception):
    """A validation in a thread told to stop: the command ended before its file's turn."""


class _Abandon:
    """A validation's progress callback that stops it once `now` is set (at its next report,
    every pool.addresses.importer.PROGRESS_EVERY rows): a thread cannot be cancelled, and
    the command would otherwise wait for a file it will not import."""

    def __init__(self) -> None:
        self.now = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.now:
            raise _Abandoned


@contextlib.contextmanager
def _refusal_naming(
    name: str, imported: Sequence[tuple[str, ImportReport]], after: int
) -> Iterator[None]:
    """A file's refusal, naming the file and what the command did with the others."""
    try:
        yield
    except AddrpoolError as exc:
        exc.message = f"{name} refused: {exc.message}. {_others(imported, after)}"
        exc.args = (exc.message,)
        raise


def _others(imported: Sequence[tuple[str, ImportReport]], after: int) -> str:
    batches = ", ".join(str(report.batch_id) for _, report in imported)
    label = "batch" if len(imported) == 1 else "batches"
    before = f"{_files(len(imported))} ({label} {batches})" if imported else "none"
    return f"Imported before it: {before}; not imported after it: {_files(after)}"


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def files_summary(imported: Sequence[tuple[str, ImportReport]]) -> dict[str, object]:
    reports = [report for _, report in imported]
    return {
        "files": [{"file": name, **import_summary(report)} for name, report in imported],
        "imported": sum(report.imported for report in reports),
        "duplicates": sum(report.skipped for report in reports),
        "invalidCount": sum(report.invalid.count for report in reports),
    }


def files_text(imported: Sequence[tuple[str, ImportReport]]) -> str:
    total = files_summary(imported)
    verb = "would import" if imported[0][1].dry_run else "imported"
    return (
        f"{len(imported)} files: {verb} {total['imported']} address(es); skipped "
        f"{total['duplicates']}; {total['invalidCount']} invalid"
    )


def shortened(exc: ValidationFailed, protocol: Protocol) -> ValidationFailed:
    """An import's refusal with CLI_LISTED problem rows, and a hint when the rows look like
    addresses of the other protocol."""
    if exc.details_count is None:  # not a list of problem rows
        return exc
    details = exc.details or []
    hint = protocol_hint(details, protocol)
    return type(exc)(
        exc.message if hint is None else f"{exc.message}; {hint}",
        code=exc.code,
        details=details[:CLI_LISTED],
        details_count=exc.details_count,
        details_by_kind=exc.details_by_kind,
    )


def protocol_hint(details: Sequence[Mapping[str, Any]], protocol: Protocol) -> str | None:
    """ "these look like EVM addresses: --protocol evm?" when most of the listed invalid
    addresses (the first MAX_LISTED of the file) parse as the other protocol's."""
    values = [d["value"] for d in details if d.get("kind") == "invalid_address"]
    for other in PROTOCOLS:
        if other == protocol or not values:
            continue
        parse = address_parser(other)
        fits = sum(1 for value in values if _parses(parse, value))
        if fits * 2 > len(values):
            return f"these look like {_PROTOCOL_NAMES[other]} addresses: --protocol {other}?"
    return None


def _parses(parse: Callable[[str], ParsedAddress], value: str) -> bool:
    try:
        parse(value)
    except ValidationFailed:
        return False
    return True


def _rows_of(name: str, chosen: str, bar: ProgressBar) -> tuple[Iterator[RawRow], ImportSource]:
    """The file's rows, holding its text only until they are read; the bar expects a row a
    line (a header or blank lines make it a slight over-estimate)."""
    data, where = _read_input(name)
    digest = hashlib.sha256(data).hexdigest()
    text = decode_import(data)
    if chosen == "auto":
        chosen = detect_format(text)
    if chosen != "json":
        bar.expect("validated", len(text.splitlines()))
    return read_rows(text, format=chosen), ImportSource(where, actor(), chosen, digest)


def import_summary(report: ImportReport) -> dict[str, object]:
    summary = report.summary()
    summary["invalid"] = summary["invalid"][:CLI_LISTED]
    return summary


def import_text(report: ImportReport) -> str:
    verb = "would import" if report.dry_run else "imported"
    invalid = report.invalid
    text = (
        f"{verb} {report.imported} {report.protocol} address(es); skipped {report.skipped} "
        f"({report.duplicates_in_input} repeated in the file, {report.already_in_pool} already "
        f"in the pool); {invalid.count} invalid"
    )
    listed = invalid.listed[:CLI_LISTED]
    for problem in listed:
        text += f"\n  line {problem.line}: {problem.value!r} {problem.message}"
    more = more_problems(invalid.count, invalid.by_kind, len(listed))
    if more is not None:
        text += f"\n  {more}"
    hint = protocol_hint(invalid.details(), report.protocol)
    return text if hint is None else f"{text}\n  {hint}"


def derive_with_progress(
    account: ExtendedPublicKey,
    *,
    protocol: Protocol,
    branch: int,
    start: int,
    count: int,
    bar: ProgressBar,
) -> list[tuple[int, ParsedAddress]]:
    derived: list[tuple[int, ParsedAddress]] = []
    for offset in range(0, count, DERIVE_CHUNK):
        size = min(DERIVE_CHUNK, count - offset)
        derived += derive_addresses(
            account, protocol=protocol, branch=branch, start=start + offset, count=size
        )
        bar.update("derived", len(derived), count)
    return derived


async def import_xpub(args: argparse.Namespace, out: Output) -> int:
    if args.count is None or args.count <= 0:
        raise ConfigurationError("--xpub needs --count (how many addresses to derive)")
    account = parse_extended_public_key(args.xpub)
    bar = ProgressBar.for_terminal(enabled=not out.as_json)
    derived = derive_with_progress(
        account, protocol=args.protocol, branch=args.branch, start=args.start,
        count=args.count, bar=bar,
    )  # fmt: skip
    async with opened_database(load_settings()) as db:
        try:
            report = await imports.import_xpub(
                db,
                protocol=args.protocol,
                account=AccountKey(account.serialize(), account.fingerprint),
                derived=derived,
                actor=actor(),
                dry_run=args.dry_run,
                progress=bar.update,
                on_wait=partial(bar.note, WAITING),
            )
        finally:
            bar.finish()
    summary = {**import_summary(report), "fingerprint": account.fingerprint}
    out.result(summary, import_text(report) + f" (key fingerprint {account.fingerprint})")
    return 0
