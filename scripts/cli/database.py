"""Opening the database for one command.

Light on purpose: every command that touches the database imports this, and none of them
should pay for the server's, the chains' or (when there is nothing to migrate) Alembic's
imports; see `scripts/cli/main.py` and `pool.kit.schema_revision`.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import AsyncIterator

from pool.instance.service import check_network, claim_network, require_network
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.errors import ConfigurationError
from pool.kit.schema_revision import at_newest_revision
from pool.vocabulary import Network


def actor() -> str:
    return f"cli:{getpass.getuser()}"


async def open_database(settings: Settings, *, claim: bool | None = False) -> Database:
    """SQLite is migrated on the spot (the embedded default); PostgreSQL must already be.

    Either must belong to this process's network. With `claim` — the processes that serve
    (`serve`, `api`, `worker`) and `keys create`, whose keys carry the network — a database
    with no network recorded is recorded as this one's (pool.instance.service). Other commands only
    check (see `of_this_network`): a migration job or an import run with the default network
    must not decide a database's network for good.
    """
    db = Database(settings.database_url, pool_size=2)
    try:
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
