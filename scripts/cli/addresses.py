"""`addrpool pool summary|stats|verify|archive|unarchive`: the address pool from a shell."""

from __future__ import annotations

import argparse

from chains.codec import address_parser
from pool.addresses.archive import archive_address, protocol_by_shape
from pool.addresses.stats import PoolSummary, summarize
from pool.deposits.payloads import pool_summary_payload
from pool.kit.clock import isoformat_z_or_none, utc_now
from pool.kit.config import load_settings
from pool.vocabulary import ARCHIVED, AVAILABLE
from scripts.cli.database import actor, opened_database
from scripts.cli.output import Output, table


async def pool_stats(args: argparse.Namespace, out: Output) -> int:
    """`pool stats` exits 1 when a protocol in use is below its threshold (for cron); `summary`
    0. A protocol without any address imported is not in use: an EVM-only pool is not low."""
    settings = load_settings()
    async with opened_database(settings, existing=True) as db, db.read() as conn:
        summaries = await summarize(conn, now=utc_now(), alerts=settings.alerts)
    data = {s.protocol: pool_summary_payload(s) for s in summaries}
    header = ["protocol", "total", "available", "bound", "allocated", "cooling", "archived"]
    header.append("threshold")
    rows = [
        [s.protocol, *(str(v) for v in list(pool_summary_payload(s).values())[:7])]
        for s in summaries
    ]
    if args.action == "stats":
        header += ["below", "projected exhaustion"]
        for row, s in zip(rows, summaries, strict=True):
            exhaustion = isoformat_z_or_none(s.projected_exhaustion_at) or "-"
            row += [_below(s), exhaustion]
    out.result(data, table(rows, header))
    below = any(s.below_threshold for s in summaries)
    return 1 if args.action == "stats" and below else 0


def _below(summary: PoolSummary) -> str:
    if not summary.in_use:
        return "not in use"
    return "yes" if summary.below_threshold else "no"


async def pool_verify(args: argparse.Namespace, out: Output) -> int:
    # Derivation's curve library is only for the command that derives.
    from chains.hd import parse_extended_public_key
    from chains.verify import verify_pool

    account = parse_extended_public_key(args.xpub)
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
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


async def pool_archive(args: argparse.Namespace, out: Output) -> int:
    archived = args.action == "archive"
    parsed = address_parser(args.protocol or protocol_by_shape(args.address))(args.address)
    async with opened_database(load_settings()) as db:
        await archive_address(db, parsed, archived=archived, actor=actor())
    state = ARCHIVED if archived else AVAILABLE
    out.result({"address": parsed.text, "status": state}, f"{parsed.text} is now {state}")
    return 0
