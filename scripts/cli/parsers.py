"""The sub-command parsers of the larger command groups, kept apart from what the commands do:
building them imports nothing but argparse, so `addrpool --help` starts at once."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pool.vocabulary import (
    ALERT_STATES,
    DELIVERY_STATUSES,
    DEPOSIT_STATUSES,
    ORDER_STATUSES,
    PROTOCOLS,
    SIGNATURE_SCHEMES,
)

CONFIGURATION_HELP = """\
configuration (docs/configuration.md), first found wins:
  environment variables ADDRPOOL_<SETTING>, e.g. ADDRPOOL_DATABASE_URL=postgresql://…;
    a key inside a section joins with "__": ADDRPOOL_RECONCILE__INTERVAL=PT5M
  the TOML file --config or $ADDRPOOL_CONFIG names, else ./addrpool.toml if it exists
  the defaults (SQLite ./addrpool.db, testnet)
`addrpool COMMAND --help` shows a command's options and their defaults.
Exit statuses: docs/operations.md."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (as ArgumentDefaultsHelpFormatter, but not
    "default: None" nor "default: False": an option without one says what leaving it out does
    in its own words), and the top-level epilog keeps its lines."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "%(default)" in text
            or action.default is None
            or action.default is False  # a flag (identity: 0 == False, and 0 is a default)
            or action.default == argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """The command's parser; its sub-command parsers are of this class too (argparse's
    `add_subparsers` makes them of the parent's), so all of them show their defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


# A string: argparse's class cannot be subscripted at run time.
SubParsers = "argparse._SubParsersAction[argparse.ArgumentParser]"
JsonFlag = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def webhooks(sub: SubParsers, add_json: JsonFlag) -> None:
    hooks = sub.add_parser("webhooks", help="webhook endpoints and deliveries")
    actions = hooks.add_subparsers(dest="action", required=True)
    add_json(actions.add_parser("list", help="endpoints"))
    create = add_json(actions.add_parser("create", help="add an endpoint (secret shown once)"))
    create.add_argument("--url", required=True, help="the receiver's URL")
    create.add_argument("--events", required=True, help="comma-separated, e.g. deposit.confirmed")
    create.add_argument(
        "--scheme", choices=SIGNATURE_SCHEMES, default="body", help="how deliveries are signed"
    )
    create.add_argument("--description", help="a note for people (default: none)")
    for name, text in (("delete", "delete an endpoint"), ("test", "queue a test.event")):
        add_json(actions.add_parser(name, help=text)).add_argument("id", help="the endpoint's id")
    listing = add_json(actions.add_parser("deliveries", help="recent deliveries"))
    listing.add_argument("--endpoint", help="only this endpoint's (default: every endpoint)")
    listing.add_argument(
        "--status", choices=list(DELIVERY_STATUSES), help="only this status (default: any)"
    )
    listing.add_argument(
        "--event-type", help="only this event, e.g. deposit.confirmed (default: any)"
    )
    listing.add_argument("--limit", type=int, default=50, help="deliveries shown")
    retry = add_json(actions.add_parser("retry", help="queue failed deliveries again"))
    retry.add_argument("id", nargs="?", help="one delivery; all failed ones when left out")


def reconcile(sub: SubParsers, add_json: JsonFlag) -> None:
    run = add_json(
        sub.add_parser(
            "reconcile",
            help="compare the chain, the deposits recorded and the webhooks acknowledged",
        )
    )
    run.add_argument(
        "--since",
        help="deposits detected since: 24h, 7d or an ISO date/time "
        "(default: the [reconcile] window setting)",
    )
    run.add_argument(
        "--chain", action="append", help="only this chain, repeatable (default: every chain)"
    )
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
    daily.add_argument(
        "--chain", action="append", help="only this chain, repeatable (default: every chain)"
    )
    daily.add_argument("--csv", action="store_true", help="CSV on stdout")


def alerts(sub: SubParsers, add_json: JsonFlag) -> None:
    alerts = sub.add_parser("alerts", help="alert records and hooks")
    actions = alerts.add_subparsers(dest="action", required=True)
    listing = add_json(actions.add_parser("list", help="alerts, newest first"))
    listing.add_argument("--state", choices=ALERT_STATES, help="only this state (default: any)")
    listing.add_argument("--limit", type=int, default=50, help="alerts shown")
    add_json(actions.add_parser("test", help="send a test alert through every hook"))
    ack = add_json(actions.add_parser("ack", help="acknowledge a firing alert (its episode)"))
    silence = add_json(
        actions.add_parser("silence", help="keep the hooks quiet about an alert's subject")
    )
    silence.add_argument(
        "--minutes", type=int, required=True, help="how long (1 to 43200, 30 days)"
    )
    unsilence = add_json(actions.add_parser("unsilence", help="end an alert's silence now"))
    for acting in (ack, silence, unsilence):
        acting.add_argument("id", type=int, help="the alert's id (alerts list)")
        acting.add_argument("--reason", required=True, help="why: kept in the audit log")


def deposits(sub: SubParsers, add_json: JsonFlag) -> None:
    """GET /api/v1/deposits's filters and pages (docs/api.md), and one deposit by id."""
    group = sub.add_parser("deposits", help="the deposit ledger, as GET /api/v1/deposits shows it")
    actions = group.add_subparsers(dest="action", required=True)
    listing = add_json(actions.add_parser("list", help="deposits, newest first, one page"))
    listing.add_argument("--reference", help="only this deposit reference (default: any)")
    listing.add_argument(
        "--status", choices=list(DEPOSIT_STATUSES), help="only this status (default: any)"
    )
    listing.add_argument("--chain", help="only this chain id, e.g. ethereum-mainnet (default: any)")
    listing.add_argument("--currency", help="only this token, e.g. USDT (default: any)")
    listing.add_argument("--address", help="only deposits to this address (default: any)")
    listing.add_argument("--page", type=_within(1, 1_000_000), default=1, help="page number")
    listing.add_argument("--limit", type=_within(1, 100), default=20, help="deposits a page")
    show = add_json(actions.add_parser("show", help="one deposit by its id"))
    show.add_argument("id", help="the depositId, e.g. dep_…")


def orders(sub: SubParsers, add_json: JsonFlag) -> None:
    """GET /api/v1/orders's filters and pages (docs/api.md, Orders), one order, a cancel."""
    group = sub.add_parser("orders", help="payment orders, as GET /api/v1/orders shows them")
    actions = group.add_subparsers(dest="action", required=True)
    listing = add_json(actions.add_parser("list", help="orders, newest first, one page"))
    listing.add_argument(
        "--status",
        type=_statuses,
        help=f"only these statuses, comma-separated: {','.join(ORDER_STATUSES)} (default: any)",
    )
    listing.add_argument("--chain", help="only this chain id, e.g. tron-mainnet (default: any)")
    listing.add_argument("--currency", help="only this token, e.g. USDT (default: any)")
    listing.add_argument("--reference", help="only this orderReference (default: any)")
    listing.add_argument(
        "--created-after", help="created at or after: 24h, 7d or an ISO date/time (default: any)"
    )
    listing.add_argument(
        "--created-before", help="created before: 24h, 7d or an ISO date/time (default: any)"
    )
    listing.add_argument("--page", type=_within(1, 1_000_000), default=1, help="page number")
    listing.add_argument("--limit", type=_within(1, 100), default=20, help="orders a page")
    show = add_json(actions.add_parser("show", help="one order: by its id, or --reference"))
    show.add_argument("order_id", nargs="?", help="the orderId, e.g. ord_…")
    show.add_argument(
        "--reference", help="the orderReference instead of the id (default: by orderId)"
    )
    cancel = add_json(
        actions.add_parser("cancel", help="cancel a pending order that has received nothing")
    )
    cancel.add_argument("order_id", help="the orderId, e.g. ord_…")


def _statuses(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(ORDER_STATUSES))
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"comma-separated statuses of: {', '.join(ORDER_STATUSES)}: {text!r}"
        )
    return chosen


def references(sub: SubParsers, add_json: JsonFlag) -> None:
    group = sub.add_parser("references", help="deposit references: binding history and totals")
    actions = group.add_subparsers(dest="action", required=True)
    show = add_json(
        actions.add_parser("show", help="a reference's address, totals and binding history")
    )
    show.add_argument("reference", help="the deposit reference")
    show.add_argument(
        "--protocol", choices=PROTOCOLS, help="when it is bound on both (default: the first bound)"
    )


def _within(low: int, high: int) -> Callable[[str], int]:
    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"a whole number from {low} to {high:,}: {text!r}")
        return value

    return whole_number


def refill(sub: SubParsers, add_json: JsonFlag) -> None:
    """The per-key switch of the pool's refill (docs/importing.md, "Refill from the xpub")."""
    group = sub.add_parser("refill", help="let a registered xpub refill the pool by itself")
    actions = group.add_subparsers(dest="action", required=True)
    enable = add_json(actions.add_parser("enable", help="refill from this key's branch"))
    disable = add_json(actions.add_parser("disable", help="stop refilling from it"))
    for acting in (enable, disable):
        acting.add_argument("key", help="the registered account xpub/tpub, or its fingerprint")
        acting.add_argument(
            "--protocol", required=True, choices=PROTOCOLS, help="the pool it refills"
        )
        acting.add_argument("--branch", type=int, default=0, help="branch below the account key")
    enable.add_argument(
        "--max-index",
        type=int,
        help="the last index it may derive (default: kept, else the [refill] max_index setting)",
    )
    enable.add_argument(
        "--next-index",
        type=int,
        help="where a new refill starts (default: after the key's highest imported index)",
    )
    enable.add_argument(
        "--low-water",
        type=int,
        help="refill when free addresses fall below this (default: the [refill] setting)",
    )
    enable.add_argument(
        "--batch", type=int, help="addresses derived a refill (default: the [refill] setting)"
    )
    add_json(actions.add_parser("status", help="the keys marked for refill and where they are"))
