"""A SQLite write transaction in one trip to the writer connection's thread.

aiosqlite runs every call on its connection in a thread of its own and hands the answer back to
the event loop; SQLAlchemy makes three or four such calls per statement (cursor, execute, fetch,
close) and more for BEGIN and COMMIT. Each call waits for the thread, then for the event loop
to come back to the waiting coroutine — behind whatever other requests it is busy with. A bind of
six statements made about twenty of them, all while holding the one writer's lock, so under
load the lock was held mostly by scheduling latency, not by SQL, and every other writer queued
behind it (docs/performance.md, Bind).

Here a whole transaction — BEGIN IMMEDIATE, the statements of one or more works, COMMIT — is one
function run in that thread (`run_batch`): one trip, whatever the number of statements. The
statements are SQLAlchemy's (`TripStatement`), compiled once per writer (`Compiler`), their
parameters put through the same bind processors (datetimes, JSON), so that what they write is
exactly what the SQLAlchemy path writes. A work runs outside the event loop: plain Python and
SQL, quick, no `await`. `pool.kit.group_commit` decides which works share a trip.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

Row = tuple[Any, ...]


class TripStatement:
    """A statement built once with bind parameters, to be compiled for the writer's dialect.

    `column_keys`: for an INSERT without values, the columns its parameters will fill.
    """

    def __init__(self, statement: ClauseElement, *, column_keys: Sequence[str] = ()) -> None:
        self.statement = statement
        self.column_keys = list(column_keys)


class Compiler:
    """One writer's compiled statements and bind processors, made on first use and kept as long
    as the writer (its dialect's processors may hold the dialect: a cache shared by every
    engine a process ever made would keep them all)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._statements: dict[int, tuple[TripStatement, _Compiled]] = {}
        self._processors: dict[tuple[type, str], Any] = {}

    def compiled(self, statement: TripStatement) -> _Compiled:
        found = self._statements.get(id(statement))
        if found is None or found[0] is not statement:
            found = (statement, _Compiled(statement, self))
            self._statements[id(statement)] = found
        return found[1]

    def processor(self, bind: BindParameter[Any]) -> Any:
        """One processor per type: statements whose parameters share a type share it, and with
        it a work's memo of processed values. Types are told apart by class and repr (which
        shows their arguments: Numeric(78, 0) is not Numeric(10, 2))."""
        kind = (type(bind.type), repr(bind.type))
        if kind not in self._processors:
            # The dialect's own implementation of the type (SQLite's DATETIME writes the text
            # SQLAlchemy reads back); the generic type's processor would hand sqlite3 the
            # datetime itself.
            impl = bind.type.dialect_impl(self.dialect)
            self._processors[kind] = impl.bind_processor(self.dialect)
        return self._processors[kind]


class _Compiled:
    """The SQL text, and for each `?` in it: the caller's parameter to put there, or the
    statement's own constant (a literal such as `status = 'available'` is a bound parameter
    too), already processed."""

    def __init__(self, statement: TripStatement, compiler: Compiler) -> None:
        compiled = cast(
            SQLCompiler,
            statement.statement.compile(
                dialect=compiler.dialect, column_keys=statement.column_keys or None
            ),
        )
        if compiled.positiontup is None:  # pragma: no cover - SQLite's paramstyle is positional
            raise TypeError("a SQLite trip needs a positional paramstyle")
        self.sql = compiled.string
        self._slots = [_slot(compiled.binds[name], compiler) for name in compiled.positiontup]

    def parameters(self, given: Mapping[str, Any], memo: Memo) -> tuple[Any, ...]:
        """The positional values; a parameter the statement needs and `given` lacks raises
        KeyError. Processing is the costly part (SQLite's text of a datetime, say:
        docs/performance.md): a value processed once in `memo` (a work's, shared by its
        statements) is not again."""
        values = []
        for name, process, constant in self._slots:
            if name is None:
                values.append(constant)
                continue
            value = given[name]
            if process is not None and value is not None:
                key = (id(process), id(value))
                seen = memo.get(key)
                if seen is not None and seen[0] is value:
                    value = seen[1]
                else:
                    memo[key] = (value, processed := process(value))
                    value = processed
            values.append(value)
        return tuple(values)


# (processor, value) identities → (value, processed value); the value is kept, so its identity
# cannot be reused by another object while the entry lives.
Memo = dict[tuple[int, int], tuple[Any, Any]]


def _slot(bind: BindParameter[Any], compiler: Compiler) -> tuple[str | None, Any, Any]:
    process = compiler.processor(bind)
    if bind.required:
        return bind.key, process, None
    constant = bind.effective_value
    return None, None, constant if process is None or constant is None else process(constant)


class Trip:
    """What a work function gets: the writer's connection, inside its transaction."""

    def __init__(self, connection: sqlite3.Connection, compiler: Compiler) -> None:
        self._connection = connection
        self._compiler = compiler
        self._memo: Memo = {}

    def rows(self, statement: TripStatement, parameters: Mapping[str, Any]) -> list[Row]:
        """Run `statement`; its rows (a RETURNING's, or none). A database error is raised as
        SQLAlchemy raises it (IntegrityError, OperationalError…), so callers catch one kind."""
        compiled = self._compiler.compiled(statement)
        values = compiled.parameters(parameters, self._memo)
        try:
            return self._connection.execute(compiled.sql, values).fetchall()
        except sqlite3.Error as exc:
            raise _as_sqlalchemy_error(compiled.sql, values, exc) from exc


@dataclass(frozen=True, slots=True)
class Outcome:
    """One work's end in a shared trip: its value, or the exception it raised (its savepoint
    rolled back, the others' writes kept)."""

    value: Any = None
    error: BaseException | None = None


def run_batch(
    connection: sqlite3.Connection, compiler: Compiler, works: Sequence[Callable[[Trip], Any]]
) -> list[Outcome]:
    """In the connection's own thread: BEGIN IMMEDIATE, each work in a savepoint of its own,
    COMMIT. A work that raises has its own writes undone and its exception kept for its caller;
    anything that ends the transaction itself (BEGIN, COMMIT, a ROLLBACK TO that fails, a
    transaction SQLite rolled back on its own) raises, and no work's writes are kept."""
    _execute(connection, "BEGIN IMMEDIATE")
    try:
        outcomes = [_in_savepoint(connection, compiler, work) for work in works]
        _execute(connection, "COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return outcomes


def _in_savepoint(
    connection: sqlite3.Connection, compiler: Compiler, work: Callable[[Trip], Any]
) -> Outcome:
    _execute(connection, "SAVEPOINT one_work")
    try:
        value = work(Trip(connection, compiler))
    except Exception as exc:
        _execute(connection, "ROLLBACK TO one_work")
        _execute(connection, "RELEASE one_work")
        return Outcome(error=exc)
    _execute(connection, "RELEASE one_work")
    return Outcome(value=value)


def _execute(connection: sqlite3.Connection, sql: str) -> None:
    """A statement that frames the transaction, its error as SQLAlchemy raises it. (BEGIN fails
    when another process held the write lock past the busy timeout; ROLLBACK TO or RELEASE when
    SQLite has rolled the whole transaction back on its own, after an I/O error say.)"""
    try:
        connection.execute(sql)
    except sqlite3.Error as exc:
        raise _as_sqlalchemy_error(sql, (), exc) from exc


def _as_sqlalchemy_error(sql: str, values: Any, exc: sqlite3.Error) -> BaseException:
    return DBAPIError.instance(sql, values, exc, sqlite3.Error)
