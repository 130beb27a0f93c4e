"""`addrpool serve|api|worker`: the long-running processes, started from the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

from chains.presets import watched_chains
from pool import __version__
from pool.alerts.hooks import check_hook_urls
from pool.kit.config import Settings, load_settings
from pool.kit.db_failures import is_database_unreachable
from pool.kit.errors import AddrpoolError, ConfigurationError
from pool.kit.logs import configure_logging
from pool.kit.writer_lock import writer_lock
from pool.vocabulary import MAINNET
from scripts.cli.database import describe_database, opened_database
from scripts.cli.output import Output
from scripts.run import server

START_WAIT_S = 60.0


def serve(args: argparse.Namespace) -> int:
    for flag, variable in (("host", "ADDRPOOL_HOST"), ("port", "ADDRPOOL_PORT")):
        if getattr(args, flag) is not None:
            os.environ[variable] = str(getattr(args, flag))
    try:
        settings = load_settings()
        check_hook_urls(settings.alerts)
        workers = args.workers or settings.workers
        # Held until the server stops: a second server on the same SQLite file stops here.
        with writer_lock(settings.database_url):
            db_text = _prepare_to_serve(settings, workers)
            print(f"addrpool {__version__} ({settings.network}) - database {db_text}", flush=True)
            server.run(
                settings,
                workers=workers,
                with_watchers=args.command == "serve",
                announce=lambda port: _listening(settings.host, port),
            )
    except AddrpoolError as exc:
        Output(as_json=False).error(exc)
        return exc.exit_status
    return 0


def _listening(host: str, port: int) -> None:
    """Printed only once the socket is bound: a script waiting for this line can connect."""
    base = f"http://{host}:{port}"
    print(f"listening on {base}  (API docs: {base}/docs, health: {base}/health)", flush=True)
    print("create an API key:  addrpool keys create --name my-service", flush=True)


def worker(args: argparse.Namespace) -> int:
    """`addrpool worker`: the chain watchers without the API, until SIGTERM/SIGINT."""
    try:
        settings = load_settings()
        check_hook_urls(settings.alerts)
        chains = watched_chains(settings)
        with writer_lock(settings.database_url):
            asyncio.run(_check_database(settings))
            configure_logging(settings.log_level, settings.log_format)
            watching = ", ".join(c.chain_id for c in chains) or "no chain (none has an RPC URL)"
            banner = f"addrpool worker: watching {watching}; delivering webhooks"
            asyncio.run(_run_worker(settings, banner))
    except AddrpoolError as exc:
        Output(as_json=False).error(exc)
        return exc.exit_status
    return 0


async def _run_worker(settings: Settings, banner: str) -> None:
    from scripts.run.workers import run_workers

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        # The batch in hand commits; no new one starts (docs/design.md, Processes).
        loop.add_signal_handler(stop_signal, stop.set)
    print(banner, flush=True)  # only now: a SIGTERM from here on stops it cleanly
    async with opened_database(settings, claim=True) as db:
        await run_workers(settings, db, stop)


def _prepare_to_serve(settings: Settings, workers: int) -> str:
    async def prepare() -> str:
        async with opened_database(settings, claim=True) as db:
            if db.is_sqlite and workers > 1:
                raise ConfigurationError("SQLite allows one process: use --workers 1")
            if not db.is_sqlite and settings.secret_key is None and settings.network == MAINNET:
                raise ConfigurationError(
                    "ADDRPOOL_SECRET_KEY is required on PostgreSQL in mainnet: webhook secrets "
                    "are encrypted with it"
                )
            return describe_database(db)

    return asyncio.run(prepare())


async def _check_database(settings: Settings) -> None:
    """Before a process announces itself: migrated (SQLite), at the newest revision, ours.

    A database out of reach for a moment — PostgreSQL restarting, the pooler waiting before it
    logs in again — is waited for, up to START_WAIT_S, as it is once the process runs: a worker
    started beside a restart comes up with it instead of exiting."""
    deadline = time.monotonic() + START_WAIT_S
    while True:
        try:
            async with opened_database(settings, claim=True):
                return
        except Exception as exc:
            if not is_database_unreachable(exc) or time.monotonic() > deadline:
                raise
            print("the database cannot be reached yet; trying again", file=sys.stderr, flush=True)
            await asyncio.sleep(1.0)
