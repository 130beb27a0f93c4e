"""`addrpool import`: addresses from a file ('-' for stdin) or derived from an xpub."""

from __future__ import annotations

import argparse
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
from pool.addresses.importer import ImportReport, ImportSource
from pool.addresses.imports import AccountKey
from pool.kit.config import load_settings
from pool.kit.errors import ConfigurationError, ValidationFailed
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
    path = Path(name)
    if path.is_dir():
        raise ConfigurationError(f"{name} is a directory: name an address file ('-' for stdin)")
    if not path.is_file():
        raise ConfigurationError(f"no such file: {name}")
    return path.read_bytes(), str(path)


async def import_file(args: argparse.Namespace, out: Output) -> int:
    if args.xpub is not None:
        return await import_xpub(args, out)
    if args.file is None:
        raise ConfigurationError("name a file to import ('-' for stdin), or use --xpub")
    bar = ProgressBar.for_terminal(enabled=not out.as_json)
    rows, source = _rows_of(args.file, args.format, bar)
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
                on_wait=partial(bar.note, WAITING),
            )
        except ValidationFailed as exc:
            raise shortened(exc, args.protocol) from None
        finally:
            bar.finish()
    out.result(import_summary(report), import_text(report))
    return 0


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
