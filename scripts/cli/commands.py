"""What each `addrpool` sub-command does; `scripts/cli/main.py` only parses arguments."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import hashlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from chains.codec import address_parser
from chains.presets import watched_chains
from chains.verify import check_master_keys, verify_import_rows
from pool import __version__
from pool.addresses.archive import change_archived
from pool.addresses.import_formats import detect_format, read_rows
from pool.addresses.importer import ImportReport, ImportSource, validate_rows, write_validated
from pool.alerts.hooks import check_hook_urls
from pool.instance.service import check_network, claim_network, require_network
from pool.keys import service as keys
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import Settings, load_settings
from pool.kit.db import Database
from pool.kit.errors import AddrpoolError, ConfigurationError, ValidationFailed
from pool.kit.logs import configure_logging
from pool.kit.migrate import current_revision, head_revision, upgrade
from pool.vocabulary import MAINNET, Network
from scripts.cli.output import Output, ProgressBar, more_problems, table
from scripts.run import server


def actor() -> str:
    return f"cli:{getpass.getuser()}"


async def open_database(settings: Settings, *, claim: bool | None = False) -> Database:
    """SQLite is migrated on the spot (the embedded default); PostgreSQL must already be.

    Either must belong to this process's network. With `claim` — the processes that serve
    (`serve`, `api`, `worker`) and `keys create`, whose keys carry the network — a database
    with no network recorded is recorded as this one's (pool.instance.service). Other commands only
    check (see `_of_this_network`): a migration job or an import run with the default network
    must not decide a database's network for good.
    """
    db = Database(settings.database_url, pool_size=2)
    try:
        await _migrated(db)
        await _of_this_network(db, settings.network, claim=claim)
    except BaseException:
        await db.dispose()
        raise
    return db


async def _migrated(db: Database) -> None:
    if db.is_sqlite:
        await upgrade(db)
        return
    current = await current_revision(db)
    if current != head_revision():
        raise ConfigurationError(
            f"the PostgreSQL schema is at {current or 'nothing'}, not {head_revision()}: "
            "run `addrpool db upgrade` first"
        )


async def _of_this_network(db: Database, network: Network, *, claim: bool | None) -> None:
    """`claim`: record the network if none is; False: refuse the other network's database, as
    recorded or as its keys tell; None: only as recorded (keys list/revoke, which must work
    on a database whose keys name both networks)."""
    where = describe_database(db)
    if claim:
        async with db.write() as conn:
            await claim_network(conn, network=network, database=where, actor=actor(), now=utc_now())
        return
    check = require_network if claim is False else check_network
    async with db.read() as conn:
        await check(conn, network=network, database=where)


@contextlib.asynccontextmanager
async def opened_database(
    settings: Settings, *, claim: bool | None = False
) -> AsyncIterator[Database]:
    """`open_database` for the length of a command, disposed however it ends."""
    db = await open_database(settings, claim=claim)
    try:
        yield db
    finally:
        await db.dispose()


def describe_database(db: Database) -> str:
    return db.url.set(drivername=db.dialect).render_as_string(hide_password=True)


def serve(args: argparse.Namespace) -> int:
    for flag, variable in (("host", "ADDRPOOL_HOST"), ("port", "ADDRPOOL_PORT")):
        if getattr(args, flag) is not None:
            os.environ[variable] = str(getattr(args, flag))
    try:
        settings = load_settings()
        check_hook_urls(settings.alerts)
        workers = args.workers or settings.workers
        db_text = _prepare_to_serve(settings, workers)
    except AddrpoolError as exc:
        Output(as_json=False).error(exc)
        return 2
    base = f"http://{settings.host}:{settings.port}"
    print(f"addrpool {__version__} ({settings.network}) - database {db_text}", flush=True)
    print(f"listening on {base}  (API docs: {base}/docs, health: {base}/health)", flush=True)
    print("create an API key:  addrpool keys create --name my-service", flush=True)
    server.run(settings, workers=workers, with_watchers=args.command == "serve")
    return 0


def worker(args: argparse.Namespace) -> int:
    """`addrpool worker`: the chain watchers without the API, until SIGTERM/SIGINT."""
    try:
        settings = load_settings()
        check_hook_urls(settings.alerts)
        chains = watched_chains(settings)
        asyncio.run(_check_database(settings))
    except AddrpoolError as exc:
        Output(as_json=False).error(exc)
        return 2
    configure_logging(settings.log_level)
    watching = ", ".join(c.chain_id for c in chains) or "no chain (none has an RPC URL)"
    asyncio.run(_run_worker(settings, f"addrpool worker: watching {watching}; delivering webhooks"))
    return 0


async def _run_worker(settings: Settings, banner: str) -> None:
    from scripts.run.workers import run_workers

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        # The batch in hand commits; no new one starts (DESIGN.md, Processes).
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
    """Before a process announces itself: migrated (SQLite), at the newest revision, ours."""
    async with opened_database(settings, claim=True):
        pass


async def db_upgrade(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        await upgrade(db)
        await _of_this_network(db, settings.network, claim=False)
        revision = await current_revision(db)
    finally:
        await db.dispose()
    out.result({"revision": revision}, f"schema at revision {revision}")
    return 0


async def db_current(args: argparse.Namespace, out: Output) -> int:
    db = Database(load_settings().database_url, pool_size=1)
    try:
        revision = await current_revision(db)
    finally:
        await db.dispose()
    head = head_revision()
    out.result(
        {"revision": revision, "head": head, "upToDate": revision == head},
        f"schema at {revision or 'nothing'} (newest: {head})",
    )
    return 0 if revision == head else 1


def _read_input(name: str) -> tuple[bytes, str]:
    if name == "-":
        return sys.stdin.buffer.read(), "stdin"
    path = Path(name)
    if not path.is_file():
        raise ConfigurationError(f"no such file: {name}")
    return path.read_bytes(), str(path)


def decode_import(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"the file is not UTF-8 text (byte {exc.start})") from exc


async def import_file(args: argparse.Namespace, out: Output) -> int:
    if args.xpub is not None:
        from scripts.cli.hd import import_xpub

        return await import_xpub(args, out)
    if args.file is None:
        raise ConfigurationError("name a file to import ('-' for stdin), or use --xpub")
    data, name = _read_input(args.file)
    digest = hashlib.sha256(data).hexdigest()
    text = decode_import(data)
    chosen = detect_format(text) if args.format == "auto" else args.format
    bar = ProgressBar.for_terminal(enabled=not out.as_json)
    validation = validate_rows(
        read_rows(text, format=chosen),
        protocol=args.protocol,
        parser=address_parser(args.protocol),
        progress=bar.update,
    )
    del text, data  # a million-line file: keep only the validated rows in memory
    fingerprints = check_master_keys(validation)
    if args.verify:
        verify_import_rows(validation, protocol=args.protocol, branch=args.branch)
    source = ImportSource(name, actor(), chosen, digest)
    db = await open_database(load_settings())
    try:
        async with db.write() as conn:
            report = await write_validated(
                conn,
                protocol=args.protocol,
                validation=validation,
                source=source,
                now=utc_now(),
                skip_invalid=args.skip_invalid,
                dry_run=args.dry_run,
                progress=bar.update,
                fingerprints=fingerprints,
            )
    finally:
        bar.finish()
        await db.dispose()
    out.result(import_summary(report), import_text(report))
    return 0


def import_summary(report: ImportReport) -> dict[str, object]:
    return report.summary()


def import_text(report: ImportReport) -> str:
    verb = "would import" if report.dry_run else "imported"
    invalid = report.invalid
    text = (
        f"{verb} {report.imported} {report.protocol} address(es); skipped {report.skipped} "
        f"({report.duplicates_in_input} repeated in the file, {report.already_in_pool} already "
        f"in the pool); {invalid.count} invalid"
    )
    for problem in invalid.listed:
        text += f"\n  line {problem.line}: {problem.value!r} {problem.message}"
    more = more_problems(invalid.count, invalid.by_kind, len(invalid.listed))
    return text if more is None else f"{text}\n  {more}"


async def keys_create(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    scopes = args.scopes.split(",") if args.scopes else None
    async with opened_database(settings, claim=True) as db, db.write() as conn:
        plaintext, key = await keys.create_key(
            conn,
            name=args.name,
            scopes=scopes,
            key_prefix=settings.key_prefix,
            actor=actor(),
            now=utc_now(),
        )
    data = {"id": key.id, "name": key.name, "key": plaintext, "scopes": sorted(key.scopes)}
    out.result(
        data,
        f"{plaintext}\n\nThis key is shown once; store it now. id {key.id}, "
        f"scopes: {', '.join(sorted(key.scopes))}",
    )
    return 0


async def keys_list(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), claim=None) as db, db.read() as conn:
        found = await keys.list_keys(conn)
    items = [
        {
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "scopes": sorted(k.scopes),
            "createdAt": isoformat_z(k.created_at),
            "lastUsedAt": isoformat_z(k.last_used_at) if k.last_used_at else None,
            "revokedAt": isoformat_z(k.revoked_at) if k.revoked_at else None,
        }
        for k in found
    ]
    rows = [
        [str(k.id), k.name, f"{k.prefix}…", ",".join(sorted(k.scopes)), _key_state(k.revoked_at)]
        for k in found
    ]
    out.result(items, table(rows, ["id", "name", "key", "scopes", "state"]) if rows else "no keys")
    return 0


def _key_state(revoked_at: object) -> str:
    return "revoked" if revoked_at else "active"


async def keys_revoke(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), claim=None) as db, db.write() as conn:
        revoked = await keys.revoke_key(conn, id_or_prefix=args.key, actor=actor(), now=utc_now())
    if not revoked:
        raise ConfigurationError(f"no active key matches {args.key!r}")
    out.result({"revoked": revoked}, f"revoked key(s): {', '.join(map(str, revoked))}")
    return 0


async def pool_archive(args: argparse.Namespace, out: Output) -> int:
    archived = args.action == "archive"
    protocol = args.protocol or ("evm" if args.address.lower().startswith("0x") else "tron")
    parsed = address_parser(protocol)(args.address)
    async with opened_database(load_settings()) as db, db.write() as conn:
        await change_archived(conn, parsed=parsed, archived=archived, actor=actor(), now=utc_now())
    state = "archived" if archived else "available"
    out.result({"address": parsed.text, "status": state}, f"{parsed.text} is now {state}")
    return 0
