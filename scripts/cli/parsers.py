"""The sub-command parsers of the larger command groups, kept apart from what the commands do:
building them imports nothing but argparse, so `addrpool --help` starts at once."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pool.vocabulary import ALERT_STATES, DELIVERY_STATUSES, SIGNATURE_SCHEMES

# A string: argparse's class cannot be subscripted at run time.
SubParsers = "argparse._SubParsersAction[argparse.ArgumentParser]"
JsonFlag = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def webhooks(sub: SubParsers, add_json: JsonFlag) -> None:
    hooks = sub.add_parser("webhooks", help="webhook endpoints and deliveries")
    actions = hooks.add_subparsers(dest="action", required=True)
    add_json(actions.add_parser("list", help="endpoints"))
    create = add_json(actions.add_parser("create", help="add an endpoint (secret shown once)"))
    create.add_argument("--url", required=True)
    create.add_argument("--events", required=True, help="comma-separated, e.g. deposit.confirmed")
    create.add_argument("--scheme", choices=SIGNATURE_SCHEMES, default="body")
    create.add_argument("--description")
    for name, text in (("delete", "delete an endpoint"), ("test", "queue a test.event")):
        add_json(actions.add_parser(name, help=text)).add_argument("id")
    listing = add_json(actions.add_parser("deliveries", help="recent deliveries"))
    listing.add_argument("--endpoint")
    listing.add_argument("--status", choices=list(DELIVERY_STATUSES))
    listing.add_argument("--event-type")
    listing.add_argument("--limit", type=int, default=50)
    retry = add_json(actions.add_parser("retry", help="queue failed deliveries again"))
    retry.add_argument("id", nargs="?", help="one delivery; all failed ones when left out")


def reconcile(sub: SubParsers, add_json: JsonFlag) -> None:
    run = add_json(
        sub.add_parser(
            "reconcile",
            help="compare the chain, the deposits recorded and the webhooks acknowledged",
        )
    )
    run.add_argument("--since", help="deposits detected since: 24h, 7d or an ISO date/time")
    run.add_argument("--chain", action="append", help="only this chain (repeatable)")
    run.add_argument(
        "--latest", action="store_true", help="show the worker's latest report; read no chain"
    )
    run.add_argument(
        "--full-speed",
        action="store_true",
        help="do not rest between steps (by default a run paces itself like the worker's)",
    )
    daily = add_json(sub.add_parser("totals", help="credited deposits per day, chain and token"))
    daily.add_argument("--since", help="default: 30 days before today (UTC)")
    daily.add_argument("--until", help="default: now")
    daily.add_argument("--chain", action="append", help="only this chain (repeatable)")
    daily.add_argument("--csv", action="store_true", help="CSV on stdout")


def alerts(sub: SubParsers, add_json: JsonFlag) -> None:
    alerts = sub.add_parser("alerts", help="alert records and hooks")
    actions = alerts.add_subparsers(dest="action", required=True)
    listing = add_json(actions.add_parser("list", help="alerts, newest first"))
    listing.add_argument("--state", choices=ALERT_STATES)
    listing.add_argument("--limit", type=int, default=50)
    add_json(actions.add_parser("test", help="send a test alert through every hook"))
