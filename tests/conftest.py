"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

`scripts/test.sh` creates a fresh PostgreSQL database for the run and names it in
ADDRPOOL_TEST_POSTGRES_URL. Without it the PostgreSQL half is skipped loudly, except under
CI=true, where a missing PostgreSQL fails the run. Under pytest-xdist each worker (gw0, gw1, …)
makes a database of its own beside that one, `<name>_gw0`, and drops it when it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from api.app import create_app
from pool.addresses import counts as pool_counts
from pool.bindings import service as bind_service
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.kit.tables import metadata
from pool.monitoring import status_counts
from tests.fixtures.helpers import BACKENDS, make_key
from tests.fixtures.scheduling import longest_first, xdist_workers

T = TypeVar("T")
POSTGRES_URL = os.environ.get("ADDRPOOL_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, … under `pytest -n`


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = longest_first(items, xdist_workers())  # tests/fixtures/scheduling.py


def _require_postgres() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if IN_CI:
        pytest.fail("CI=true but no PostgreSQL: ADDRPOOL_TEST_POSTGRES_URL is not set")
    pytest.skip("NO POSTGRESQL: ADDRPOOL_TEST_POSTGRES_URL is not set; PostgreSQL half skipped")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a sync fixture, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


async def _migrate(url: str) -> None:
    db = Database(url, pool_size=1)
    await upgrade(db)
    await db.dispose()  # closing SQLite's last connection checkpoints the WAL into the file


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file built once through the migrations, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    run_sync(_migrate(f"sqlite:///{path}"))
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> Iterator[str]:
    url = _require_postgres()
    if XDIST_WORKER is None:
        run_sync(_migrate(url))
        yield url
        return
    # Parallel workers would truncate each other's tables: one database per worker.
    own = make_url(url).set(database=f"{make_url(url).database}_{XDIST_WORKER}")
    run_sync(_recreate_database(url, own.database, drop_only=False))
    own_url = own.render_as_string(hide_password=False)
    run_sync(_migrate(own_url))
    yield own_url
    run_sync(_recreate_database(url, own.database, drop_only=True))


async def _recreate_database(server_url: str, name: str | None, *, drop_only: bool) -> None:
    """Drop database `name` (and create it again, empty) on the server of `server_url`."""
    assert name and name.replace("_", "").isalnum(), name
    conn = await asyncpg.connect(_plain_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, tmp_path: Path, sqlite_template: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The test's database, empty; afterwards, the kept counts (the pool's, deposits',
    deliveries' and orders') must equal a full count, whatever the test wrote and however:
    every test that writes is a test of the triggers that keep them."""
    if backend == "sqlite":
        path = tmp_path / "addrpool.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        assert _sqlite_count_mismatches(path) == [], "kept counts differ from a full count"
        return
    url: str = request.getfixturevalue("postgres_migrated")
    emptier = request.getfixturevalue("postgres_emptier")
    emptier.empty_all_tables()
    # The bind's per-process hint (where never-used ids start) describes the rows just
    # deleted: a test of which address is bound first would otherwise depend on the test
    # that ran before it in this process.
    bind_service._never_used_from.clear()
    yield url
    assert emptier.count_mismatches() == [], "kept counts differ from a full count"


# Each compares its kept counts with a full count in one statement (one snapshot).
_COUNT_CHECKS = [
    str(q.text) for q in (pool_counts.FULL_COUNT_MISMATCHES, status_counts.FULL_COUNT_MISMATCHES)
]


def _sqlite_count_mismatches(path: Path) -> list[tuple[Any, ...]]:
    """What a test left miscounted; nothing when it left no database, or an older schema."""
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path)) as conn:
        try:
            return [tuple(row) for check in _COUNT_CHECKS for row in conn.execute(check)]
        except sqlite3.OperationalError:  # a test that downgraded the schema and stayed there
            return []


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# Names from our own table definitions, not from input: formatting them into SQL is safe.
_TABLES = [table.name for table in metadata.sorted_tables]
_WHICH_HOLD_ROWS = "SELECT " + ", ".join(f"EXISTS (SELECT FROM {n}) AS {n}" for n in _TABLES)  # noqa: S608
# What TRUNCATE … RESTART IDENTITY resets: the sequences that tables' columns own.
_RESTART_OWNED_SEQUENCES = """
    SELECT setval(s.seqrelid, s.seqstart, false)
    FROM pg_sequence s
    JOIN pg_class c ON c.oid = s.seqrelid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = s.seqrelid AND d.deptype IN ('a', 'i'))
"""


async def _empty_all_tables(conn: asyncpg.Connection) -> None:
    """Every table empty and every identity restarted, as TRUNCATE … RESTART IDENTITY leaves
    them: DELETE the tables that hold rows (children first), which costs milliseconds where
    truncating all of them costs half a second per test (new files for every table)."""
    holding = await conn.fetchrow(_WHICH_HOLD_ROWS)
    assert holding is not None
    async with conn.transaction():
        for name in reversed(_TABLES):
            if holding[name]:
                await conn.execute(f"DELETE FROM {name}")  # noqa: S608
        # Deleting rows counts them out (triggers, migrations 0022 and 0027): the counts last.
        await conn.execute("DELETE FROM address_count")
        await conn.execute("DELETE FROM status_count")
        await conn.execute(_RESTART_OWNED_SEQUENCES)


class TableEmptier:
    """Empties the worker's PostgreSQL database before each test through one connection kept
    open for the whole session, on an event loop of its own in a thread (the tests' loops come
    and go). A new connection and event loop per test cost ~25 ms more than the emptying itself
    (~3 ms once the connection has its statements prepared and the catalog cached), and every
    PostgreSQL test pays it. The connection sits idle between tests, outside any transaction."""

    def __init__(self, url: str) -> None:
        self._dsn = _plain_dsn(url)
        self._conn: asyncpg.Connection | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def empty_all_tables(self) -> None:
        asyncio.run_coroutine_threadsafe(self._empty(), self._loop).result()

    def count_mismatches(self) -> list[tuple[Any, ...]]:
        return asyncio.run_coroutine_threadsafe(self._count_mismatches(), self._loop).result()

    async def _count_mismatches(self) -> list[tuple[Any, ...]]:
        try:
            conn = await self._connection()
            return [tuple(row) for check in _COUNT_CHECKS for row in await conn.fetch(check)]
        except asyncpg.UndefinedTableError:  # a test that downgraded the schema and stayed there
            return []
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            # As in `_empty`: a schema rebuilt under our prepared statements; once afresh.
            await self._disconnect()
            conn = await self._connection()
            return [tuple(row) for check in _COUNT_CHECKS for row in await conn.fetch(check)]

    async def _empty(self) -> None:
        try:
            await _empty_all_tables(await self._connection())
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            # A test that rebuilt the schema (downgrade, upgrade) leaves prepared statements
            # naming tables that are gone, and one may have ended our session: start afresh once.
            await self._disconnect()
            await _empty_all_tables(await self._connection())

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn)
        return self._conn

    async def _disconnect(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await self._conn.close(timeout=5)
        self._conn = None

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


@pytest.fixture(scope="session")
def postgres_emptier(postgres_migrated: str) -> Iterator[TableEmptier]:
    emptier = TableEmptier(postgres_migrated)
    yield emptier
    emptier.close()  # before postgres_migrated drops the database


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        cooldown="P7D",
        secret_key="test-secret-key-for-webhook-secrets",
        webhook_allow_private=True,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url, pool_size=5)
    yield database
    await database.dispose()


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db, monitored_chains={"evm": ["ethereum-sepolia"], "tron": []})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        yield http
    # ASGITransport runs no lifespan: stop the post-bind alert task and any console import
    # before the database goes.
    await app.state.ctx.console_jobs.close()
    await app.state.ctx.pool_alerts.close()


@pytest.fixture
async def admin_key(db: Database) -> str:
    return await make_key(db, scopes=["admin"])


@pytest.fixture
async def service_key(db: Database) -> str:
    return await make_key(db, scopes=None)


@pytest.fixture
def no_proxy_env() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.lower().endswith("_proxy")}
    yield
    os.environ.update(saved)


# A real anvil node with test USDT/USDC for every test that asks for `devnet`.
from tests.fixtures.devnet import anvil_node, devnet, devnet_tokens  # noqa: E402, F401


@pytest.fixture
def receivers() -> Iterator[Callable[..., Any]]:
    """Start HTTP receivers that answer each POST from a script: (status, headers, delay)."""
    from tests.pool.webhooks.test_delivery import Receiver

    started: list[Receiver] = []

    def start(*script: tuple[int, dict[str, str], float]) -> Receiver:
        started.append(Receiver(list(script) or [(200, {}, 0.0)]))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


from tests.fixtures.orders import orders_client, orders_settings  # noqa: E402, F401
