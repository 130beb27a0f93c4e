"""`addrpool reconcile` and `addrpool totals`: the reconciliation report and daily totals."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pool.deposits.totals import daily_totals, totals_csv
from pool.kit import clock
from pool.kit.clock import utc_now
from pool.kit.config import load_settings
from pool.kit.errors import ValidationFailed
from pool.kit.pacing import UNPACED
from pool.reconciliation.repository import credited_between, load_report
from pool.reconciliation.service import CATEGORIES, report_view
from scripts.cli.database import opened_database
from scripts.cli.output import Output, table


def parse_moment(value: str, *, now: datetime) -> datetime:
    try:
        return clock.parse_moment(value, now=now)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc


async def reconcile(args: argparse.Namespace, out: Output) -> int:
    """Exit code 1 when the report holds discrepancies (for cron), 0 when clean."""
    settings = load_settings()
    async with opened_database(settings, existing=args.latest) as db:
        if args.latest:
            async with db.read() as conn:
                stored = await load_report(conn)
            if stored is None:
                raise ValidationFailed(
                    "no reconciliation has run yet on this database, so there is no report; "
                    "run one now with `addrpool reconcile`"
                )
            report = report_view(stored)
        else:
            # web3 is a second to import: only the commands that talk to a chain pay for it.
            from chains.checks.reconciler import reconcile as run_once

            since = parse_moment(args.since, now=utc_now()) if args.since else None
            pace = UNPACED if args.full_speed else None  # None: `[reconcile] duty_cycle`
            report = await run_once(
                settings, db, since=since, chain_ids=args.chain, duty_cycle=pace
            )
    out.result(report, report_text(report))
    return 1 if report["discrepancies"] else 0


def report_text(report: dict[str, Any]) -> str:
    lines = [
        f"reconciliation #{report['id']} at {report['finishedAt']} "
        f"(deposits since {report['since']}: {report['depositsChecked']}, "
        f"orders: {report.get('ordersChecked', 0)}, {report['durationMs']} ms)",
        "",
        table(
            [[name, CATEGORIES[name].severity, str(n)] for name, n in report["counts"].items()],
            ["category", "severity", "count"],
        ),
        "",
    ]
    for chain_id, audit in report["chains"].items():
        state = audit["error"] or f"{audit['verifiedOnChain']} deposits re-read from the chain"
        lines.append(f"{chain_id}: {state}")
    repairs = report["repairs"]
    lines.append(
        f"repairs: {repairs['requeuedDeliveries']} deliveries re-enqueued, "
        f"{repairs['announced']} announced, {repairs['reverted']} reverted, "
        f"{repairs['rescannedRanges']} ranges rescanned"
    )
    items = [i for i in report["items"] if CATEGORIES[i["category"]].severity != "info"]
    if items:
        lines += [
            "",
            table(
                [
                    [
                        i["category"],
                        i["chainId"],
                        i["depositId"] or i.get("orderId") or "-",
                        i["txHash"] or "-",
                        i["detail"],
                    ]
                    for i in items
                ],
                ["category", "chain", "deposit/order", "tx", "what disagrees"],
            ),
        ]
    return "\n".join(lines)


async def totals(args: argparse.Namespace, out: Output) -> int:
    now = utc_now()
    since = parse_moment(args.since, now=now) if args.since else _midnight(now) - timedelta(days=30)
    until = parse_moment(args.until, now=now) if args.until else now
    if until <= since:
        raise ValidationFailed("--until must be after --since")
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        rows = await credited_between(conn, since=since, until=until, chain_ids=args.chain)
    found = daily_totals(rows)
    if args.csv:
        print(totals_csv(found), end="")
        return 0
    cells = [
        [
            str(row[k])
            for k in ("date", "chainId", "currency", "count", "amount", "firstBlock", "lastBlock")
        ]
        for row in found
    ]
    text = table(
        cells, ["date", "chain", "currency", "count", "amount", "first block", "last block"]
    )
    out.result(
        {"since": since.isoformat(), "until": until.isoformat(), "totals": found},
        text if cells else "no credited deposits in that period",
    )
    return 0


def _midnight(moment: datetime) -> datetime:
    day: date = moment.date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
