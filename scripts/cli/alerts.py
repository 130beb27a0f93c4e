"""`addrpool alerts list|test|ack|silence|unsilence`: the alerts raised about the pool, a test
through the hooks, and an operator's actions on one alert (each audited with its reason)."""

from __future__ import annotations

import argparse
from typing import Any

from pool.alerts import actions
from pool.alerts.notifications_repository import Notice
from pool.alerts.repository import list_alerts
from pool.deposits.payloads import alert_payload
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import load_settings
from pool.kit.errors import ConfigurationError
from scripts.cli.database import actor, opened_database
from scripts.cli.output import Output, table


async def alerts_list(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        records, _total = await list_alerts(conn, state=args.state, limit=args.limit)
    found = [alert_payload(r) for r in records]
    rows = [
        [
            str(a["id"]),
            a["state"] + _marks(a),
            a["severity"],
            a["subject"],
            str(a["value"]),
            a["lastFiredAt"] or "-",
        ]
        for a in found
    ]
    text = (
        table(rows, ["id", "state", "severity", "subject", "value", "last fired"])
        if rows
        else "no alerts"
    )
    out.result(found, text)
    return 0


def _marks(shown: dict[str, Any]) -> str:
    """`firing (acked, silenced)`: what an operator did, beside the state."""
    marks = ["acked"] if shown["acknowledgedAt"] else []
    if shown["silencedUntil"] and shown["silencedUntil"] > isoformat_z(utc_now()):
        marks.append(f"silenced until {shown['silencedUntil']}")
    return f" ({', '.join(marks)})" if marks else ""


async def alerts_ack(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db:
        found = await actions.acknowledge(db, args.id, actor(), args.reason)
    return _acted(out, found, f"alert {args.id} acknowledged")


async def alerts_silence(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db:
        found = await actions.silence(db, args.id, actor(), args.reason, args.minutes)
    until = alert_payload(found)["silencedUntil"]
    return _acted(out, found, f"alert {args.id} ({found['subject']}) silenced until {until}")


async def alerts_unsilence(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db:
        found = await actions.unsilence(db, args.id, actor(), args.reason)
    return _acted(out, found, f"alert {args.id} ({found['subject']}) unsilenced")


def _acted(out: Output, found: dict[str, Any], text: str) -> int:
    out.result(alert_payload(found), text)
    return 0


async def alerts_test(args: argparse.Namespace, out: Output) -> int:
    """PayIn's "Send Test Alert": a test alert through every hook now; exit 1 if one failed."""
    # The HTTP client is only for the command that sends: `alerts list` stays light.
    from pool.alerts.hooks import HookFailed, check_hook_urls, message, send
    from pool.webhooks.sender import WebhookSender

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
        "acknowledged_at": None,
        "acknowledged_by": None,
        "silenced_until": None,
        "silenced_by": None,
    }
    return Notice(transition_id=0, transition="fired", at=now, alert=alert)
