"""Opening the database for one command.

Light on purpose: every command that touches the database imports this, and none of them
should pay for the server's, the chains' or (when there is nothing to migrate) Alembic's
imports; see `scripts/cli/main.py` and `pool.kit.schema_revision`.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from pool.instance.service import check_network, claim_network, require_network
from pool.kit.clock import utc_now
from pool.kit.config import Settings, database_url_origin
from pool.kit.db import Database
from pool.kit.errors import ConfigurationError, DatabaseUnreachable
from pool.kit.schema_revision import at_newest_revision
from pool.vocabulary import Network


def actor() -> str:
    return f"cli:{getpass.getuser()}"


async def open_database(
    settings: Settings, *, claim: bool | None = False, existing: bool = False
) -> Database:
    """SQLite is migrated on the spot (the embedded default); PostgreSQL must already be.

    Either must belong to this process's network. With `claim` — the processes that serve
    (`serve`, `api`, `worker`) and `keys create`, whose keys carry the network — a database
    with no network recorded is recorded as this one's (pool.instance.service). Other commands only
    check (see `of_this_network`): a migration job or an import run with the default network
    must not decide a database's network for good.
    """
    db = Database(
        settings.database_url,
        pool_size=2,
        pooled=settings.database_pooled,
        session_url=settings.database_session_url,
    )
    try:
        if existing:
            must_exist(db)
        with reaching(db):
            await _migrated(db)
        await of_this_network(db, settings.network, claim=claim)
    except BaseException:
        await db.dispose()
        raise
    return db


async def _migrated(db: Database) -> None:
    if await at_newest_revision(db):
        return
    from pool.kit.migrate import current_revision, head_revision, upgrade

    if db.is_sqlite:
        await upgrade(db)
        return
    current = await current_revision(db)
    if current != head_revision():
        raise ConfigurationError(
            f"the PostgreSQL schema is at {current or 'nothing'}, not {head_revision()}: "
            "run `addrpool db upgrade` first"
        )


async def of_this_network(db: Database, network: Network, *, claim: bool | None) -> None:
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
    settings: Settings, *, claim: bool | None = False, existing: bool = False
) -> AsyncIterator[Database]:
    """`open_database` for the length of a command, disposed however it ends. `existing`: a
    read-only command, which must not create a SQLite database (see `must_exist`)."""
    db = await open_database(settings, claim=claim, existing=existing)
    try:
        yield db
    finally:
        await db.dispose()


def must_exist(db: Database) -> None:
    """A read-only command pointed at a SQLite file that is not there says where it looked and
    why: creating it would show an empty pool, as if the real database had lost everything."""
    path = db.url.database if db.is_sqlite and db.url.database != ":memory:" else None
    if path and not Path(path).exists():
        raise DatabaseUnreachable(
            f"no database at {Path(path).resolve()} (database_url from {database_url_origin()}); "
            "point database_url at yours, or create this one with `addrpool db upgrade`"
        )


def describe_database(db: Database) -> str:
    return db.url.set(drivername=db.dialect).render_as_string(hide_password=True)


@contextlib.contextmanager
def reaching(db: Database) -> Iterator[None]:
    """Around a command's first use of the database: a server that is not there, or a file
    that cannot be opened, is one line naming it (DatabaseUnreachable), not a traceback."""
    path = db.url.database if db.is_sqlite and db.url.database != ":memory:" else None
    # Checked first: SQLite's own error names no file, and the checkpoint thread would print
    # a traceback of its own on the way.
    if path and not Path(path).parent.is_dir():
        raise DatabaseUnreachable(_no_sqlite_file(path))
    try:
        yield
    except (OSError, DBAPIError) as exc:
        problem = unreachable(exc, db)
        if problem is None:
            raise
        raise problem from exc


def unreachable(exc: BaseException, db: Database) -> DatabaseUnreachable | None:
    """What stopped the connection, for a person; None when `exc` is not about connecting."""
    url = db.url
    if db.is_sqlite:
        if isinstance(exc, DBAPIError) and "unable to open database file" in str(exc.orig):
            return DatabaseUnreachable(_no_sqlite_file(str(url.database)))
        return None
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if isinstance(exc, OSError):
        return DatabaseUnreachable(
            f"cannot reach PostgreSQL at {where} ({_why(exc)}): is it running, and is "
            "ADDRPOOL_DATABASE_URL (database_url) right?"
        )
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return DatabaseUnreachable(
        f"cannot use PostgreSQL at {where}, database {url.database!r}: {reason}"
    )


def _no_sqlite_file(path: str) -> str:
    return (
        f"cannot open the SQLite database {path}: its directory must exist and be writable "
        "(database_url / ADDRPOOL_DATABASE_URL)"
    )


def _why(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "no such host"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if "Connect call failed" in text or "refused" in text.lower():
        return "connection refused"  # asyncpg tried every address of the host: all refused
    return exc.strerror or text
