"""The `addrpool` command: thin over the same services the API uses.

The parser is built without importing a command: each is imported when it runs (`HANDLERS`),
so `addrpool --help` does not load the server, and `addrpool keys list` not the chains' or the
webhooks' HTTP stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pool import __version__
from pool.addresses.import_formats import FORMATS
from pool.kit.errors import EXIT_BUG, EXIT_REFUSED, AddrpoolError
from pool.kit.logs import configure_logging
from pool.vocabulary import PROTOCOLS
from scripts.cli import parsers
from scripts.cli.output import Output

Handler = Callable[[argparse.Namespace, Output], Awaitable[int]]


def _parser() -> argparse.ArgumentParser:
    parser = parsers.Parser(
        prog="addrpool",
        description="Self-hosted deposit address pool manager (PayIn-compatible API).",
        epilog=parsers.CONFIGURATION_HELP,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"addrpool {__version__}",
        help="show the version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help_text in (
        ("serve", "API and workers in one process (the embedded default; migrates SQLite)"),
        ("api", "the API only, for running several behind a load balancer"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", help="listen address (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="listen port (default 8000)")
        p.add_argument(
            "--workers",
            type=int,
            help="uvicorn worker processes, PostgreSQL only (default: the workers setting, 1)",
        )

    sub.add_parser("worker", help="the chain watchers and webhook delivery, without the API")
    parsers.webhooks(sub, _json)
    parsers.reconcile(sub, _json)
    parsers.alerts(sub, _json)
    parsers.deposits(sub, _json)
    parsers.references(sub, _json)
    parsers.orders(sub, _json)
    parsers.refill(sub, _json)
    _json(sub.add_parser("chains", help="configured chains: head, cursor, lag, endpoint health"))
    rescan = _json(
        sub.add_parser(
            "rescan",
            help="read a block range again: token transfers, and the chain's coin where watched"
            " (safe while watching)",
        )
    )
    rescan.add_argument(
        "--chain", required=True, help="the chain id (`addrpool chains` lists them)"
    )
    rescan.add_argument("--from-block", type=int, required=True, help="the first block to read")
    rescan.add_argument("--to-block", type=int, help="default: the watcher's cursor")
    _devnet_parser(sub)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    _json(db.add_parser("upgrade", help="migrate the schema to the newest revision"))
    _json(db.add_parser("current", help="show the schema revision"))
    revision = _json(db.add_parser("revision", help="write the next migration file (developers)"))
    revision.add_argument("-m", "--message", required=True, help="what the migration changes")
    backup = _json(
        db.add_parser("backup", help="online copy of the SQLite database and its key file")
    )
    backup.add_argument("destination", help="the new backup file (its key goes to DEST.secret)")

    imp = _json(
        sub.add_parser("import", help="import addresses from a file ('-' for stdin) or an xpub")
    )
    imp.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="the address file ('-' for stdin); several are imported one after another, each "
        "its own batch; leave out with --xpub",
    )
    imp.add_argument("--xpub", help="derive from this account xpub/tpub (default: none; read FILE)")
    imp.add_argument("--start", type=int, default=0, help="first index to derive (--xpub)")
    imp.add_argument(
        "--count", type=int, help="how many addresses to derive (no default: required with --xpub)"
    )
    imp.add_argument("--branch", type=int, default=0, help="branch below the account key")
    imp.add_argument(
        "--verify",
        action="store_true",
        help="check that rows with derivation_index and master_public_key derive from them",
    )
    imp.add_argument(
        "--format",
        default="auto",
        choices=FORMATS,
        help="lines, csv (with or without header) or json; auto detects which",
    )
    imp.add_argument(
        "--protocol", required=True, choices=PROTOCOLS, help="the pool the addresses join"
    )
    imp.add_argument("--skip-invalid", action="store_true", help="import the good lines anyway")
    imp.add_argument("--dry-run", action="store_true", help="validate only; write nothing")

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = _json(keys.add_parser("create", help="create a key (shown once)"))
    create.add_argument(
        "--name", required=True, help="what the key is for, e.g. the service using it"
    )
    create.add_argument(
        "--scopes",
        help="comma-separated (default deposits:read,deposits:write,orders:read,orders:write)",
    )
    _json(keys.add_parser("list", help="list keys (never the keys themselves)"))
    revoke = _json(keys.add_parser("revoke", help="revoke a key by id, prefix or name"))
    revoke.add_argument("key", help="the key's id, prefix or name")

    pool = sub.add_parser("pool", help="the address pool").add_subparsers(
        dest="action", required=True
    )
    _json(pool.add_parser("summary", help="addresses per protocol and state"))
    _json(
        pool.add_parser(
            "stats", help="summary with thresholds and projected exhaustion; exit 1 when low"
        )
    )
    recount = _json(
        pool.add_parser("recount", help="check the kept counts against a full count; --repair")
    )
    recount.add_argument(
        "--repair", action="store_true", help="rebuild the kept counts from the full count"
    )
    verify = _json(pool.add_parser("verify", help="check that pool addresses derive from an xpub"))
    verify.add_argument(
        "--xpub", required=True, help="the account xpub/tpub they should derive from"
    )
    verify.add_argument("--protocol", required=True, choices=PROTOCOLS, help="the pool to check")
    verify.add_argument("--branch", type=int, default=0, help="branch below the account key")
    verify.add_argument(
        "--bound", type=int, default=10_000, help="indices searched for addresses without one"
    )
    for action in ("archive", "unarchive"):
        p = _json(pool.add_parser(action, help=f"{action} an address"))
        p.add_argument("address", help="the pool address")
        p.add_argument(
            "--protocol", choices=PROTOCOLS, help="default: told by the address's form (0x…: evm)"
        )
    _add_global_options(parser, default=None)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    """`--config` and `--debug`, before or after the command's name: on the top parser and on
    every subcommand's (there with defaults that do not overwrite what the top one parsed)."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="FILE",
        help="the TOML configuration file (default: $ADDRPOOL_CONFIG, else ./addrpool.toml)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default if default is argparse.SUPPRESS else False,
        help="show the Python traceback behind an error",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_global_options(child, default=argparse.SUPPRESS)


def _devnet_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    devnet = sub.add_parser("devnet", help="a local demo chain with test USDT/USDC, and addrpool")
    actions = devnet.add_subparsers(dest="action", required=True)
    start = actions.add_parser("up", help="start anvil, deploy tokens, import addresses, serve")
    start.add_argument("--dir", type=Path, default=Path(".devnet"), help="state directory")
    start.add_argument("--port", type=int, default=8000, help="addrpool's listen port")
    start.add_argument("--addresses", type=int, default=300, help="pool addresses to import")
    start.add_argument("--block-time", type=float, default=2.0, help="seconds between blocks")
    transfer = actions.add_parser("send", help="send test tokens to an address")
    transfer.add_argument("--dir", type=Path, default=Path(".devnet"), help="state directory")
    transfer.add_argument("--to", required=True, help="recipient address")
    transfer.add_argument("--amount", required=True, help="token units, e.g. 25 or 0.5")
    transfer.add_argument(
        "--token", default="USDT", choices=["USDT", "USDC"], help="the test token"
    )


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


# (command, action) -> "module:function", imported on dispatch.
HANDLERS: dict[tuple[str, str | None], str] = {
    ("db", "upgrade"): "scripts.cli.schema:db_upgrade",
    ("db", "current"): "scripts.cli.schema:db_current",
    ("db", "revision"): "scripts.cli.schema:db_revision",
    ("db", "backup"): "scripts.cli.backup:db_backup",
    ("import", None): "scripts.cli.imports:import_file",
    ("keys", "create"): "scripts.cli.keys:keys_create",
    ("keys", "list"): "scripts.cli.keys:keys_list",
    ("keys", "revoke"): "scripts.cli.keys:keys_revoke",
    ("pool", "summary"): "scripts.cli.addresses:pool_stats",
    ("pool", "stats"): "scripts.cli.addresses:pool_stats",
    ("pool", "verify"): "scripts.cli.addresses:pool_verify",
    ("pool", "recount"): "scripts.cli.recount:pool_recount",
    ("pool", "archive"): "scripts.cli.addresses:pool_archive",
    ("pool", "unarchive"): "scripts.cli.addresses:pool_archive",
    ("chains", None): "scripts.cli.chains:chains_list",
    ("rescan", None): "scripts.cli.chains:rescan",
    ("webhooks", "list"): "scripts.cli.webhooks:endpoints_list",
    ("webhooks", "create"): "scripts.cli.webhooks:endpoint_create",
    ("webhooks", "delete"): "scripts.cli.webhooks:endpoint_delete",
    ("webhooks", "test"): "scripts.cli.webhooks:endpoint_test",
    ("webhooks", "deliveries"): "scripts.cli.webhooks:deliveries_list",
    ("webhooks", "retry"): "scripts.cli.webhooks:deliveries_retry",
    ("reconcile", None): "scripts.cli.reconcile:reconcile",
    ("totals", None): "scripts.cli.reconcile:totals",
    ("alerts", "list"): "scripts.cli.alerts:alerts_list",
    ("alerts", "test"): "scripts.cli.alerts:alerts_test",
    ("alerts", "ack"): "scripts.cli.alerts:alerts_ack",
    ("alerts", "silence"): "scripts.cli.alerts:alerts_silence",
    ("alerts", "unsilence"): "scripts.cli.alerts:alerts_unsilence",
    ("deposits", "list"): "scripts.cli.deposits:deposits_list",
    ("deposits", "show"): "scripts.cli.deposits:deposits_show",
    ("references", "show"): "scripts.cli.deposits:references_show",
    ("orders", "list"): "scripts.cli.orders:orders_list",
    ("orders", "show"): "scripts.cli.orders:orders_show",
    ("orders", "cancel"): "scripts.cli.orders:orders_cancel",
    ("refill", "enable"): "scripts.cli.refill:refill_enable",
    ("refill", "disable"): "scripts.cli.refill:refill_disable",
    ("refill", "status"): "scripts.cli.refill:refill_status",
}


def handler_for(command: str, action: str | None) -> Handler:
    module, name = HANDLERS[(command, action)].split(":")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Every error a person can act on is one line and an exit status (docs/operations.md);
    anything else is a bug, shown with its traceback."""
    args = _parser().parse_args(argv)
    if args.config is not None:
        os.environ["ADDRPOOL_CONFIG"] = str(args.config)  # read wherever settings are loaded
    Output.show_tracebacks = args.debug
    output = Output(as_json=getattr(args, "json", False))
    try:
        return _dispatch(args, output)
    except AddrpoolError as exc:
        output.error(exc)
        return exc.exit_status
    except OSError as exc:
        if exc.filename is None:
            return _bug(exc)
        output.error(AddrpoolError(f"{exc.filename}: {exc.strerror or exc}"))
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, reported as one
        return _bug(exc)


def _dispatch(args: argparse.Namespace, output: Output) -> int:
    if args.command in ("serve", "api", "worker"):
        from scripts.cli import processes  # the server's and the watchers' imports

        return processes.serve(args) if args.command != "worker" else processes.worker(args)
    if args.command == "devnet":
        from scripts.devnet import demo as devnet_demo  # anvil's tooling only where it is used

        return devnet_demo.up(args) if args.action == "up" else devnet_demo.send(args)
    # A command's output says what it did and what went wrong, in one place; the warnings the
    # services log on the way (an RPC retry, an endpoint set aside) are for the long-running
    # processes' logs, and would only bury that line.
    configure_logging("ERROR")
    handler = handler_for(args.command, getattr(args, "action", None))
    return asyncio.run(handler(args, output))


def _bug(exc: Exception) -> int:
    traceback.print_exception(exc, file=sys.stderr)
    print(
        f"addrpool {__version__}: unexpected {type(exc).__name__}; this is a bug, please report "
        "it with the traceback above",
        file=sys.stderr,
    )
    return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
