"""`addrpool import`: addresses from a file ('-' for stdin) or derived from an xpub."""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from chains.codec import address_parser
from chains.hd import ExtendedPublicKey, derive_addresses, parse_extended_public_key
from chains.verify import check_master_keys, verify_import_rows
from pool.addresses import imports
from pool.addresses.import_formats import RawRow, detect_format, read_rows
from pool.addresses.importer import ImportReport, ImportSource
from pool.addresses.imports import AccountKey
from pool.kit.config import load_settings
from pool.kit.errors import ConfigurationError, ValidationFailed
from pool.vocabulary import ParsedAddress, Protocol
from scripts.cli.database import actor, opened_database
from scripts.cli.output import Output, ProgressBar, more_problems

DERIVE_CHUNK = 10_000


def _read_input(name: str) -> tuple[bytes, str]:
    if name == "-":
        return sys.stdin.buffer.read(), "stdin"
    path = Path(name)
    if path.is_dir():
        raise ConfigurationError(f"{name} is a directory: name an address file ('-' for stdin)")
    if not path.is_file():
        raise ConfigurationError(f"no such file: {name}")
    return path.read_bytes(), str(path)


def decode_import(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"the file is not UTF-8 text (byte {exc.start})") from exc


async def import_file(args: argparse.Namespace, out: Output) -> int:
    if args.xpub is not None:
        return await import_xpub(args, out)
    if args.file is None:
        raise ConfigurationError("name a file to import ('-' for stdin), or use --xpub")
    rows, source = _rows_of(args.file, args.format)
    bar = ProgressBar.for_terminal(enabled=not out.as_json)
    verify = None
    if args.verify:
        verify = partial(verify_import_rows, protocol=args.protocol, branch=args.branch)
    checked = await imports.check_rows(
        rows,
        protocol=args.protocol,
        parser=address_parser(args.protocol),
        master_keys=check_master_keys,
        verify=verify,
        progress=bar.update,
    )
    del rows  # a million-line file: keep only the checked rows in memory
    async with opened_database(load_settings()) as db:
        try:
            report = await imports.import_file(
                db,
                checked,
                protocol=args.protocol,
                source=source,
                skip_invalid=args.skip_invalid,
                dry_run=args.dry_run,
                progress=bar.update,
            )
        finally:
            bar.finish()
    out.result(import_summary(report), import_text(report))
    return 0


def _rows_of(name: str, chosen: str) -> tuple[Iterator[RawRow], ImportSource]:
    """The file's rows, holding its text only until they are read."""
    data, where = _read_input(name)
    digest = hashlib.sha256(data).hexdigest()
    text = decode_import(data)
    if chosen == "auto":
        chosen = detect_format(text)
    return read_rows(text, format=chosen), ImportSource(where, actor(), chosen, digest)


def import_summary(report: ImportReport) -> dict[str, object]:
    return report.summary()


def import_text(report: ImportReport) -> str:
    verb = "would import" if report.dry_run else "imported"
    invalid = report.invalid
    text = (
        f"{verb} {report.imported} {report.protocol} address(es); skipped {report.skipped} "
        f"({report.duplicates_in_input} repeated in the file, {report.already_in_pool} already "
        f"in the pool); {invalid.count} invalid"
    )
    for problem in invalid.listed:
        text += f"\n  line {problem.line}: {problem.value!r} {problem.message}"
    more = more_problems(invalid.count, invalid.by_kind, len(invalid.listed))
    return text if more is None else f"{text}\n  {more}"


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
            )
        finally:
            bar.finish()
    summary = {**import_summary(report), "fingerprint": account.fingerprint}
    out.result(summary, import_text(report) + f" (key fingerprint {account.fingerprint})")
    return 0
