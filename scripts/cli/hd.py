"""`addrpool import --xpub` and `addrpool pool verify --xpub`."""

from __future__ import annotations

import argparse

from chains.hd import ExtendedPublicKey, derive_addresses, parse_extended_public_key
from chains.verify import verify_pool
from pool.addresses.importer import ImportSource
from pool.addresses.xpub_import import import_derived
from pool.kit.clock import utc_now
from pool.kit.config import load_settings
from pool.kit.errors import ConfigurationError
from pool.vocabulary import ParsedAddress, Protocol
from scripts.cli.commands import actor, import_summary, import_text, open_database, opened_database
from scripts.cli.output import Output, ProgressBar

DERIVE_CHUNK = 10_000


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
    source = ImportSource(f"xpub:{account.fingerprint}", actor(), "xpub")
    db = await open_database(load_settings())
    try:
        async with db.write() as conn:
            report = await import_derived(
                conn,
                protocol=args.protocol,
                public_key=account.serialize(),
                fingerprint=account.fingerprint,
                derived=derived,
                source=source,
                now=utc_now(),
                dry_run=args.dry_run,
                progress=bar.update,
            )
    finally:
        bar.finish()
        await db.dispose()
    summary = {**import_summary(report), "fingerprint": account.fingerprint}
    out.result(summary, import_text(report) + f" (key fingerprint {account.fingerprint})")
    return 0


async def pool_verify(args: argparse.Namespace, out: Output) -> int:
    account = parse_extended_public_key(args.xpub)
    async with opened_database(load_settings()) as db, db.read() as conn:
        report = await verify_pool(
            conn, account=account, protocol=args.protocol, branch=args.branch, bound=args.bound
        )
    data = {
        "protocol": report.protocol,
        "fingerprint": account.fingerprint,
        "verified": report.verified,
        "mismatched": report.mismatched,
        "notDerivable": report.not_derivable,
        "otherKey": report.other_key,
        "searchedUpTo": report.searched_up_to,
        "ok": report.ok,
    }
    text = (
        f"{report.verified} verified, {len(report.mismatched)} mismatched, "
        f"{len(report.not_derivable)} not derivable within {args.bound} indices, "
        f"{report.other_key} imported with another key"
    )
    for item in report.mismatched:
        text += (
            f"\n  MISMATCH {item['address']} at index {item['index']} (key gives {item['derives']})"
        )
    for address in report.not_derivable:
        text += f"\n  NOT DERIVABLE {address}"
    out.result(data, text)
    return 0 if report.ok else 1
