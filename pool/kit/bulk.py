"""Many rows in one statement: a multi-row INSERT on SQLite, an INSERT from arrays on PostgreSQL.

SQLite (`insert_rows`):

aiosqlite runs SQLite in a thread of its own. `executemany`, and every row a RETURNING hands
back, is one `sqlite3_step` each, and after each step that thread waits for the GIL, which a
busy event loop (parsing the next range's logs) gives up only every few milliseconds: rows
inserted that way take many times as long as in multi-row statements (docs/performance.md).
SQLAlchemy's `insert().values([...])` builds the same statement but coerces every value
(slower still), so the SQL is rendered here, once per shape, and the values go through the
columns' own bind processors.

PostgreSQL (`insert_json`): the rows as one JSON parameter, expanded by the server — one parameter
whatever the row count. SQLAlchemy's multi-row VALUES puts every value of a catch-up range through
its own processing, most of the range's time (docs/performance.md); arrays per column (unnest) still
had asyncpg check each element in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, BindParameter, ColumnElement, Table, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.db import dumps_json
from pool.kit.types import BaseUnits

MAX_PARAMETERS = 32_766  # SQLite's default limit since 3.32


def in_values(
    dialect: str, column: ColumnElement[Any], values: BindParameter[Any] | Sequence[Any]
) -> ColumnElement[bool]:
    """`column IN (values)`. On PostgreSQL `column = ANY(array)`, one parameter: an IN list
    is rendered by SQLAlchemy value by value, each with its cast, and for the watcher's
    thousand recipients a range that was a large share of its recording time
    (docs/performance.md). SQLite
    has no arrays: an ordinary IN list there. `values` may be a `list_parameter`, for
    statements built once."""
    if not isinstance(values, BindParameter):
        values = list_parameter(dialect, None, column, list(values))
    if dialect == "postgresql":
        return column == any_(values)
    return column.in_(values)


def list_parameter(
    dialect: str, name: str | None, column: ColumnElement[Any], value: Any = None
) -> BindParameter[Any]:
    """A parameter holding a list of `column` values, for `in_values` on `dialect`."""
    if dialect == "postgresql":
        return bindparam(name, value, type_=ARRAY(column.type))
    return bindparam(name, value, expanding=True)


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, suffix: str = ""
) -> None:
    """INSERT `rows` (all with the same keys) into `table` on SQLite, `suffix` appended (an
    ON CONFLICT clause, say), in the caller's transaction.

    Straight to aiosqlite's `execute_fetchall`: one trip to its thread per statement, where
    SQLAlchemy's `exec_driver_sql` makes three (cursor, execute, close), and every trip waits
    for the event loop, busy parsing the next range during a catch-up (the awaits took
    several times SQLite's own time: docs/performance.md).
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


async def insert_json(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    suffix: str = "",
    returning: str | None = None,
) -> list[Any]:
    """INSERT `rows` (all with the same keys) into `table` on PostgreSQL, `suffix` appended,
    in the caller's transaction; the `returning` column of each row inserted.

    The rows travel as one JSON parameter (see `json_insert`).
    """
    if not rows:
        return []
    sql, records = json_insert(conn, table, rows, suffix=suffix, returning=returning)
    found = await (await asyncpg_connection(conn)).fetch(sql, records)
    return [record[0] for record in found] if returning else []


def json_insert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    suffix: str = "",
    returning: str | None = None,
) -> tuple[str, str]:
    """The PostgreSQL statement that inserts `rows` (all with the same keys, at least one)
    into `table`, and its one parameter ($1): the rows as JSON — for callers that wrap the
    insert in a statement of their own (a CTE whose RETURNING feeds a second insert).

    The JSON is made by orjson in one call and expanded by the server (`json_to_recordset`,
    each column typed as the table declares it). As arrays, one per column, asyncpg checked
    every element's type in Python (abc `isinstance` per element; with its encoding, a large
    share of recording a range: docs/performance.md).
    """
    columns = tuple(rows[0])
    convert = _json_converters(conn, table, columns)
    values = _columns(rows, columns, convert)
    records = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
    sql = _recordset_statement(conn.dialect, table, columns, suffix, returning)
    return sql, dumps_json(records)


async def asyncpg_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, in the same transaction: for statements that
    SQLAlchemy would process value by value (see the module's docstring)."""
    return (await conn.get_raw_connection()).driver_connection


def _json_converters(
    conn: AsyncConnection, table: Table, columns: Sequence[str]
) -> list[Callable[[Any], Any] | None]:
    """Each value as JSON carries it: JSON columns as the objects themselves, amounts as
    decimal strings (orjson refuses integers beyond 64 bits; 10 USDT of 18 decimals is one),
    the rest through the column's bind processor (aware datetimes stay datetimes)."""
    processors = _processors(conn, table, columns)
    converters: list[Callable[[Any], Any] | None] = []
    for name, process in zip(columns, processors, strict=True):
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            converters.append(None)
        elif isinstance(column_type, BaseUnits):
            converters.append(_decimal_text)
        else:
            converters.append(process)
    return converters


def _decimal_text(value: int | None) -> str | None:
    return None if value is None else str(int(value))


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
def _recordset_statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...], suffix: str, returning: str | None
) -> str:
    """Each record's fields typed as the table declares its columns."""
    typed = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in columns)
    tail = f" RETURNING {returning}" if returning else ""
    listed = ", ".join(columns)
    return (
        f"INSERT INTO {table.name} ({listed}) SELECT {listed} "  # noqa: S608 - names from our own tables, values bound
        f"FROM json_to_recordset($1::json) AS r({typed}) {suffix}{tail}"
    )


@lru_cache(maxsize=64)
def _statement(table: str, columns: tuple[str, ...], count: int, suffix: str) -> str:
    row = "(" + ", ".join("?" * len(columns)) + ")"
    listed = ", ".join(columns)
    return f"INSERT INTO {table} ({listed}) VALUES {', '.join([row] * count)} {suffix}"  # noqa: S608 - names from our own tables, values bound
