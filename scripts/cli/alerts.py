"""`addrpool pool stats|summary` and `addrpool alerts list|test`: the operator's view of the
pool's health and of the alerts raised about it."""

from __future__ import annotations

import argparse
from typing import Any

from pool.addresses.stats import PoolSummary, summarize
from pool.alerts.hooks import HookFailed, check_hook_urls, message, send
from pool.alerts.notifications_repository import Notice
from pool.alerts.repository import list_alerts
from pool.deposits.payloads import alert_payload, pool_summary_payload
from pool.kit.clock import isoformat_z_or_none, utc_now
from pool.kit.config import load_settings
from pool.kit.errors import ConfigurationError
from pool.vocabulary import ALERT_STATES
from pool.webhooks.sender import WebhookSender
from scripts.cli.commands import opened_database
from scripts.cli.output import Output, table


async def pool_stats(args: argparse.Namespace, out: Output) -> int:
    """`pool stats` exits 1 when a protocol in use is below its threshold (for cron); `summary`
    0. A protocol without any address imported is not in use: an EVM-only pool is not low."""
    settings = load_settings()
    async with opened_database(settings) as db, db.read() as conn:
        summaries = await summarize(conn, now=utc_now(), alerts=settings.alerts)
    data = {s.protocol: pool_summary_payload(s) for s in summaries}
    header = ["protocol", "total", "available", "bound", "cooling", "archived", "threshold"]
    rows = [
        [s.protocol, *(str(v) for v in list(pool_summary_payload(s).values())[:6])]
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


async def alerts_list(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings()) as db, db.read() as conn:
        records, _total = await list_alerts(conn, state=args.state, limit=args.limit)
    found = [alert_payload(r) for r in records]
    rows = [
        [a["state"], a["severity"], a["subject"], str(a["value"]), a["lastFiredAt"] or "-"]
        for a in found
    ]
    text = (
        table(rows, ["state", "severity", "subject", "value", "last fired"])
        if rows
        else "no alerts"
    )
    out.result(found, text)
    return 0


async def alerts_test(args: argparse.Namespace, out: Output) -> int:
    """PayIn's "Send Test Alert": a test alert through every hook now; exit 1 if one failed."""
    alerts = load_settings().alerts
    if not alerts.hooks:
        raise ConfigurationError("no alert hook is configured ([[alerts.hooks]] in the TOML file)")
    check_hook_urls(alerts)
    body = message(_test_notice(), test=True)
    results: dict[str, str] = {}
    sender = WebhookSender(timeout=max(hook.timeout for hook in alerts.hooks))
    try:
        for hook in alerts.hooks:
            try:
                await send(hook, body, sender, allow_private=alerts.hooks_allow_private)
                results[hook.name] = "ok"
            except HookFailed as exc:
                results[hook.name] = f"failed: {exc}"
    finally:
        await sender.aclose()
    out.result(results, "\n".join(f"{name}: {result}" for name, result in results.items()))
    return 0 if all(r == "ok" for r in results.values()) else 1


def _test_notice() -> Notice:
    now = utc_now()
    alert = {
        "id": 0,
        "kind": "test",
        "subject": "test:alert",
        "severity": "info",
        "state": "firing",
        "value": None,
        "details": {"message": "A test alert from addrpool: your hook works."},
        "first_fired_at": now,
        "last_fired_at": now,
        "resolved_at": None,
    }
    return Notice(transition_id=0, transition="fired", at=now, alert=alert)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], add_json: Any) -> None:
    alerts = sub.add_parser("alerts", help="alert records and hooks")
    actions = alerts.add_subparsers(dest="action", required=True)
    listing = add_json(actions.add_parser("list", help="alerts, newest first"))
    listing.add_argument("--state", choices=ALERT_STATES)
    listing.add_argument("--limit", type=int, default=50)
    add_json(actions.add_parser("test", help="send a test alert through every hook"))


HANDLERS = {
    ("pool", "summary"): pool_stats,
    ("pool", "stats"): pool_stats,
    ("alerts", "list"): alerts_list,
    ("alerts", "test"): alerts_test,
}
