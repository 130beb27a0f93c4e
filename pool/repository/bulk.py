"""Many rows in one statement: a multi-row INSERT on SQLite, an INSERT from arrays on PostgreSQL.

SQLite (`insert_rows`):

aiosqlite runs SQLite in a thread of its own. `executemany`, and every row a RETURNING hands
back, is one `sqlite3_step` each, and after each step that thread waits for the GIL, which a
busy event loop (parsing the next range's logs) gives up only every few milliseconds: 10,000
deposit rows took 3.6 s that way (measured), against about 0.1 s as multi-row statements.
SQLAlchemy's `insert().values([...])` builds the same statement but coerces every value
(slower still), so the SQL is rendered here, once per shape, and the values go through the
columns' own bind processors.

PostgreSQL (`insert_columns`): one array per column, unnested into rows — a statement of as many
parameters as columns, whatever the row count, encoded by asyncpg in C. SQLAlchemy's multi-row
VALUES for a catch-up range's 1,250 deposits put 21,250 parameters through its own processing:
113 ms of a 195 ms range (measured).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

MAX_PARAMETERS = 32_766  # SQLite's default limit since 3.32


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, suffix: str = ""
) -> None:
    """INSERT `rows` (all with the same keys) into `table` on SQLite, `suffix` appended (an
    ON CONFLICT clause, say), in the caller's transaction.

    Straight to aiosqlite's `execute_fetchall`: one trip to its thread per statement, where
    SQLAlchemy's `exec_driver_sql` makes three (cursor, execute, close), and every trip waits
    for the event loop, busy parsing the next range during a catch-up (measured: the awaits
    took four times SQLite's own time).
    """
    if not rows:
        return
    columns = tuple(rows[0])
    processors = _processors(conn, table, columns)
    per_statement = MAX_PARAMETERS // len(columns)
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection  # an aiosqlite.Connection
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _statement(table.name, columns, len(chunk), suffix)
        by_row = zip(*_columns(chunk, columns, processors), strict=True)
        await driver.execute_fetchall(sql, tuple(v for row in by_row for v in row))  # type: ignore[union-attr]


async def insert_columns(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    suffix: str = "",
    returning: str | None = None,
) -> list[Any]:
    """INSERT `rows` (all with the same keys) into `table` on PostgreSQL, `suffix` appended,
    in the caller's transaction; the `returning` column of each row inserted."""
    if not rows:
        return []
    columns = tuple(rows[0])
    processors = _processors(conn, table, columns)
    arrays = _columns(rows, columns, processors)
    sql = _unnest_statement(conn.dialect, table, columns, suffix, returning)
    raw = await conn.get_raw_connection()
    records = await raw.driver_connection.fetch(sql, *arrays)  # type: ignore[union-attr]
    return [record[0] for record in records] if returning else []


def _columns(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    processors: Sequence[Callable[[Any], Any] | None],
) -> list[list[Any]]:
    return [_column(rows, name, process) for name, process in zip(columns, processors, strict=True)]


def _column(
    rows: Sequence[Mapping[str, Any]], name: str, process: Callable[[Any], Any] | None
) -> list[Any]:
    """One column's values through its bind processor. A batch's rows share objects (its
    transaction's `now`, say): a value that is the very object of the row before is not
    processed again (formatting a datetime for SQLite is the costly part)."""
    if process is None:
        return [row[name] for row in rows]
    processed: list[Any] = []
    seen: Any = _NOTHING
    for row in rows:
        value = row[name]
        if value is not seen:
            seen, result = value, process(value)
        processed.append(result)
    return processed


_NOTHING = object()


def _processors(
    conn: AsyncConnection, table: Table, columns: Sequence[str]
) -> list[Callable[[Any], Any] | None]:
    dialect = conn.dialect
    return [table.c[name].type._cached_bind_processor(dialect) for name in columns]


@lru_cache(maxsize=64)
def _unnest_statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...], suffix: str, returning: str | None
) -> str:
    """Each array cast to its column's own type, as the table declares it."""
    arrays = ", ".join(
        f"${i}::{table.c[name].type.compile(dialect=dialect)}[]"
        for i, name in enumerate(columns, start=1)
    )
    tail = f" RETURNING {returning}" if returning else ""
    listed = ", ".join(columns)
    return f"INSERT INTO {table.name} ({listed}) SELECT * FROM unnest({arrays}) {suffix}{tail}"  # noqa: S608 - names from our own tables, values bound


@lru_cache(maxsize=64)
def _statement(table: str, columns: tuple[str, ...], count: int, suffix: str) -> str:
    row = "(" + ", ".join("?" * len(columns)) + ")"
    listed = ", ".join(columns)
    return f"INSERT INTO {table} ({listed}) VALUES {', '.join([row] * count)} {suffix}"  # noqa: S608 - names from our own tables, values bound
