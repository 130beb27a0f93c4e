"""Engines and transactions for SQLite and PostgreSQL.

Callers own the transaction (committed at the edge, never inside a service):
`async with db.write() as conn` commits on exit and rolls back on any error. SQLite gets
`BEGIN IMMEDIATE` for writes (a deferred BEGIN that later writes fails at once with SQLITE_BUSY)
and, in this process, one writer at a time, so writers queue on a lock instead of spinning in
SQLite's busy handler; they share one connection of their own, whose page cache stays warm from
one write to the next. A hot SQLite write (the bind) runs with `write_in_one_trip` instead: the
whole transaction in that connection's thread, committed with the others queued beside it
(pool.kit.sqlite_trip, pool.kit.group_commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pool.kit.errors import ConfigurationError, RaceLost
from pool.kit.group_commit import GroupCommit
from pool.kit.sqlite_checkpoint import SAFETY_NET_PAGES, Checkpointer
from pool.kit.sqlite_trip import Compiler, Trip

T = TypeVar("T")
U = TypeVar("U")

READ_ONLY = "addrpool_read_only"
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql"}
# The SQLite writer's page cache (KiB). A catch-up range's deposits land all over the deposit
# indexes; with SQLite's 2 MB default, and the pool handing writes to a different connection
# each time (whose cache another connection's commit had invalidated), every range read those
# pages again, and a cold insert costs far more than a warm one (docs/performance.md).
SQLITE_WRITER_CACHE_KIB = 65_536


def async_url(database_url: str) -> URL:
    """Accept `sqlite:///file.db` or `postgresql://user@host:port/db`; pick our own driver."""
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise ConfigurationError(f"ADDRPOOL_DATABASE_URL is not a database URL: {exc}") from exc
    except ValueError:  # e.g. a port that is not a number; the URL may hold a password
        raise ConfigurationError(
            "ADDRPOOL_DATABASE_URL is not a database URL (is the port a number?)"
        ) from None
    backend = url.get_backend_name()
    backend = _ALIASES.get(backend, backend)
    if backend not in _DRIVERS:
        raise ConfigurationError(
            f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://..."
        )
    return url.set(drivername=_DRIVERS[backend])


class Database:
    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = 10,
        pooled: bool = False,
        session_url: str | None = None,
    ) -> None:
        """`pooled`: `database_url` is a transaction-pooling PgBouncer (see `_create_engine`);
        `session_url` then reaches the server itself, for `session()` (docs/scaling.md)."""
        self.url = async_url(database_url)
        self.dialect = self.url.get_backend_name()
        self.pooled = pooled and not self.is_sqlite
        if self.pooled and session_url is None:
            raise ConfigurationError(
                "a pooled database needs ADDRPOOL_DATABASE_SESSION_URL for its locks"
            )
        self.engine = _create_engine(self.url, pool_size, pooled=self.pooled)
        self._session_engine = (
            _session_engine(async_url(session_url))
            if session_url is not None and not self.is_sqlite
            else None
        )
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._writer = _sqlite_writer_engine(self.url) if self.is_sqlite else self.engine
        self._sqlite_writer: asyncio.Lock | None = None
        self._trip_driver: Any = None  # see _writer_driver
        self._group_commit = (
            GroupCommit(self._writer_lock, self._writer_driver, Compiler(self._writer.dialect))
            if self.is_sqlite
            else None
        )
        self._checkpointer = _checkpointer(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._writer_lock(), self._writer.begin() as conn:
            yield conn

    async def write_in_one_trip(self, work: Callable[[Trip], T]) -> T:
        """SQLite: `work`'s writes committed, `work` run in the writer connection's thread with
        others that queued meanwhile — one trip there, one commit (pool.kit.group_commit) — and
        its value, or its exception (its own writes then undone, the others' kept)."""
        if self._group_commit is None:
            raise TypeError("write_in_one_trip is for SQLite")
        return await self._group_commit.run(work)

    async def _writer_driver(self) -> Any:
        """The writer's aiosqlite connection, kept between trips (call with the writer's lock).

        Checking it out of the writer's pool for each trip, and back in (a ROLLBACK: one more trip
        to its thread), cost several times the CPU of the trip itself (docs/performance.md).
        Every user of that pool holds the writer's lock, as a trip does, so nobody else touches
        the connection meanwhile; if the pool has closed it (after an error), the next trip
        checks out the new one. (aiosqlite's `_execute`, `_conn`, `_connection` and `_running`
        are its own internals, which its public methods use; the trip tests fail if they go.)
        """
        driver = self._trip_driver
        if driver is None or not driver._running or driver._connection is None:
            async with self._writer.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
            self._trip_driver = driver
        return driver

    def _writer_lock(self) -> asyncio.Lock:
        if self._sqlite_writer is None:
            self._sqlite_writer = asyncio.Lock()
            if self._checkpointer is not None:
                self._checkpointer.start()  # a process that never writes needs none
        return self._sqlite_writer

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.begin() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """Each statement is its own transaction: no BEGIN/COMMIT round trips (PostgreSQL).

        Behind a transaction pooler, a transaction after all: asyncpg prepares each statement
        in one round trip and runs it in the next, and between the two the pooler may hand the
        server connection to another client, whose statement would then be run instead.
        Callers use it for one statement or for reads, so one transaction around them is
        the same result.
        """
        if self.pooled:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncConnection]:
        """A connection of its own in autocommit mode, whose session state (advisory locks,
        session settings) lasts as long as it is held: on the server itself, never through a
        transaction pooler, which would hand the session to others between statements."""
        async with (self._session_engine or self.engine).connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def run_write(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        attempts: int = 5,
        single_statement: bool = False,
    ) -> T:
        """Run `work` in a write transaction, again from the start if a concurrent writer won.

        `single_statement`: `work` writes with one statement (atomic by itself) and otherwise
        only reads, so on PostgreSQL it runs without an explicit transaction.
        """
        use_autocommit = single_statement and not self.is_sqlite
        for attempt in range(1, attempts + 1):
            try:
                async with self.autocommit() if use_autocommit else self.write() as conn:
                    return await work(conn)
            except RaceLost:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def dispose(self) -> None:
        if self._group_commit is not None:
            await self._group_commit.idle()  # the trips in hand end first
        self._trip_driver = None
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        if self._writer is not self.engine:
            await self._writer.dispose()
        if self._session_engine is not None:
            await self._session_engine.dispose()
        await self.engine.dispose()


def dumps_json(value: Any) -> str:
    """JSON columns' text: orjson, several times the standard library's speed (a catch-up writes
    thousands of event payloads a second). What orjson refuses — an integer beyond 64 bits, a
    key that is not a string — goes to the standard library, which accepts both; datetimes
    are written there as orjson writes them (ISO 8601)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=_isoformat)


def _isoformat(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


async def computed_while_waiting(statement: Awaitable[T], compute: Callable[[], U]) -> tuple[T, U]:
    """`statement`'s result and `compute()`'s, `compute` (Python, no I/O: it must not touch
    the statement's connection) running while the database works on `statement`.

    `statement` must send its SQL before anything else it awaits (one step of it is run to get
    it on the wire), or the two do not overlap — which is still correct, only slower.
    """
    task = asyncio.ensure_future(statement)
    try:
        await asyncio.sleep(0)  # one step of `statement`: up to sending it
        computed = compute()
        return await task, computed
    finally:
        if not task.done():  # `compute` raised: do not leave the statement running unowned
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def plan_for_given_values(conn: AsyncConnection) -> None:
    """PostgreSQL: plan the rest of this transaction's statements for the values they get.

    asyncpg prepares every statement; after five runs PostgreSQL may switch one to a generic plan,
    costed on table statistics. Those of a fast-growing table go stale between analyses (and without
    autovacuum never come): the watcher's look-up of a range's known deposits (`tx_hash = ANY($2)`)
    turned into a scan of the whole deposit table, slower with every deposit (docs/performance.md).
    Planning a range's few statements afresh costs far less. SQLite plans every statement for its
    values anyway.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


# Read back with the standard library: orjson.loads turns an integer beyond 64 bits into a
# float, silently; json.loads keeps it exact.
_JSON_CODEC: dict[str, Any] = {"json_serializer": dumps_json, "json_deserializer": json.loads}


def _create_engine(url: URL, pool_size: int, *, pooled: bool = False) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, **_JSON_CODEC
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={
            "server_settings": {"application_name": "addrpool"},
            **(_UNPREPARED if pooled else {}),
        },
        **_JSON_CODEC,
    )
    if pooled:
        _set_up_codecs_in_a_transaction(engine)
    return engine


# Behind a transaction pooler no prepared statement outlives its transaction: the next one may
# run on another server connection. So asyncpg keeps none (statement_cache_size), nor does
# SQLAlchemy (prepared_statement_cache_size), and each statement is prepared unnamed (""):
# a named one would collide with another client's of the same name on a shared server
# connection, or stay there for good; the unnamed one is replaced by the next. Every statement
# runs inside a transaction (`Database.autocommit`), so its preparation and its run share one
# server connection.
_UNPREPARED: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: "",
}


def _set_up_codecs_in_a_transaction(engine: AsyncEngine) -> None:
    """SQLAlchemy sets up asyncpg's JSON codecs on each new connection with a look-up of the
    type outside any transaction (see `_UNPREPARED`); it runs in one here. (The two setup
    methods are the dialect's documented points for overriding this.)"""
    dialect: Any = engine.dialect
    for name in ("setup_asyncpg_json_codec", "setup_asyncpg_jsonb_codec"):
        setup = getattr(dialect, name)

        async def in_a_transaction(conn: Any, setup: Any = setup) -> None:
            async with conn._connection.transaction():
                await setup(conn)

        setattr(dialect, name, in_a_transaction)


def _session_engine(url: URL) -> AsyncEngine:
    """Connections straight to the server, each held for as long as its lock: one per watched
    chain and one for the reconciler, so no fixed limit."""
    return create_async_engine(
        url,
        pool_size=1,
        max_overflow=-1,
        connect_args={"server_settings": {"application_name": "addrpool"}},
        **_JSON_CODEC,
    )


def _sqlite_writer_engine(url: URL) -> AsyncEngine:
    """One connection: the writer lock lets one write through at a time anyway."""
    engine = create_async_engine(url, pool_size=1, max_overflow=0, **_JSON_CODEC)
    _configure_sqlite(engine, cache_kib=SQLITE_WRITER_CACHE_KIB)
    return engine


def _checkpointer(url: URL) -> Checkpointer | None:
    """A file-backed SQLite database gets its WAL checkpointed off the writers' path."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Checkpointer(url.database)


def _configure_sqlite(engine: AsyncEngine, *, cache_kib: int | None = None) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit deferred BEGIN is the trap).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=10000",
            # pool.kit.sqlite_checkpoint does it; a writer does only if that thread falls behind.
            f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}",
            *([f"PRAGMA cache_size=-{cache_kib}"] if cache_kib else []),
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
