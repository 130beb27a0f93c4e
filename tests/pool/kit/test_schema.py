"""The migrations build what `pool/kit/tables.py` describes, on both databases, and round-trip."""

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ClauseElement, UnaryExpression

from pool.deposits.ledger_repository import insert_deposits
from pool.kit.db import Database, dumps_json
from pool.kit.migrate import current_revision, downgrade, head_revision, upgrade
from pool.kit.tables import address, deposit, event, metadata
from pool.webhooks.events_repository import insert_events


async def test_migrated_schema_matches_the_table_definitions(db: Database) -> None:
    def describe(connection):
        inspector = inspect(connection)
        return {
            name: {c["name"] for c in inspector.get_columns(name)}
            for name in inspector.get_table_names()
            if name != "alembic_version"
        }

    async with db.read() as conn:
        actual = await conn.run_sync(describe)
    expected = {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    assert actual == expected
    assert await current_revision(db) == head_revision()


async def test_migrated_indexes_match_the_table_definitions(db: Database) -> None:
    """Every index by name: its columns in order, uniqueness, sort order (PostgreSQL) and the
    predicate of a partial index; every unique constraint by name and columns."""
    async with db.read() as conn:
        actual = await conn.run_sync(_migrated_indexes)
        dialect = conn.dialect
    assert actual == _defined_indexes(dialect)


Shapes = dict[str, dict[str, Any]]  # "table.name" → what the index or constraint is


def _migrated_indexes(connection: Connection) -> Shapes:
    inspector = inspect(connection)
    dialect = connection.dialect.name
    shapes: Shapes = {}
    for table in inspector.get_table_names():
        for index in inspector.get_indexes(table):
            if index.get("duplicates_constraint"):  # PostgreSQL's index behind a UNIQUE
                continue
            where = index.get("dialect_options", {}).get(f"{dialect}_where")
            shapes[f"{table}.{index['name']}"] = {
                "columns": tuple(index["column_names"]),
                "unique": bool(index["unique"]),
                "where": _predicate(where, connection),
                "sorting": _reflected_sorting(index) if dialect == "postgresql" else {},
            }
        for unique in inspector.get_unique_constraints(table):
            shapes[f"{table}.{unique['name']}"] = {"columns": tuple(unique["column_names"])}
    return shapes


def _defined_indexes(dialect: Any) -> Shapes:
    shapes: Shapes = {}
    for table in metadata.sorted_tables:
        for index in table.indexes:
            if not _built_on(index, dialect.name):
                continue
            columns = [_column_of(e) for e in index.expressions]
            shapes[f"{table.name}.{index.name}"] = {
                "columns": tuple(c.name for c in columns),
                "unique": bool(index.unique),
                "where": _predicate(index.dialect_options[dialect.name]["where"], dialect),
                "sorting": _defined_sorting(index) if dialect.name == "postgresql" else {},
            }
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                shapes[f"{table.name}.{constraint.name}"] = {
                    "columns": tuple(c.name for c in constraint.columns)
                }
    return shapes


def _built_on(index: Index, dialect: str) -> bool:
    """False for an index `ddl_if` keeps to the other database."""
    condition = getattr(index, "_ddl_if", None)
    return condition is None or condition.dialect in (None, dialect)


def _column_of(expression: Any) -> Column[Any]:
    while not isinstance(expression, Column):
        expression = expression.element  # through asc(), nulls_first(), …
    return expression


_SORT_FLAGS = {
    operators.desc_op: "desc",
    operators.nulls_first_op: "nulls_first",
    operators.nulls_last_op: "nulls_last",
}


def _defined_sorting(index: Index) -> dict[str, tuple[str, ...]]:
    sorting: dict[str, tuple[str, ...]] = {}
    for expression in index.expressions:
        flags: list[str] = []
        element = expression
        while isinstance(element, UnaryExpression):
            if element.modifier in _SORT_FLAGS:
                flags.append(_SORT_FLAGS[element.modifier])
            element = element.element
        if flags:
            sorting[_column_of(expression).name] = tuple(sorted(flags))
    return sorting


def _reflected_sorting(index: Any) -> dict[str, tuple[str, ...]]:
    return {name: tuple(sorted(flags)) for name, flags in index.get("column_sorting", {}).items()}


def _predicate(where: Any, bind: Any) -> str | None:
    """A partial index's predicate in one spelling: PostgreSQL gives it back with casts and
    parentheses (`((state)::text = 'firing'::text)`), SQLite as written."""
    if where is None:
        return None
    if isinstance(where, ClauseElement):
        dialect = getattr(bind, "dialect", bind)
        where = str(where.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    text = re.sub(r"::(text|character varying|integer|bigint)\b", "", str(where))
    text = re.sub(r"[()]", "", text).replace("!=", "<>")
    # Keywords in one case (`IS NULL` / `is null`), quoted literals as they are.
    text = re.sub(r"'[^']*'|[^']+", lambda m: m[0] if m[0][0] == "'" else m[0].lower(), text)
    return " ".join(text.split())


async def test_downgrade_and_upgrade_again(db: Database) -> None:
    await downgrade(db, "base")
    assert await current_revision(db) is None
    await upgrade(db)
    assert await current_revision(db) == head_revision()


async def test_huge_amounts_and_aware_timestamps_survive_both_databases(db: Database) -> None:
    amount = 2**200 + 12345  # far beyond SQLite's 2^63 integers and a REAL's 53 bits
    moment = datetime(2026, 11, 21, 10, 30, 0, 123000, tzinfo=timezone(timedelta(hours=7)))
    async with db.write() as conn:
        address_id = (
            await conn.execute(
                insert(address)
                .values(
                    protocol="evm",
                    address="0x" + "1" * 40,
                    hex20="1" * 40,
                    status="available",
                    created_at=moment,
                )
                .returning(address.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(deposit).values(
                id="dep_x",
                chain_id="ethereum-sepolia",
                tx_hash="0x" + "ab" * 32,
                log_index=0,
                block_number=1,
                block_hash="0x" + "cd" * 32,
                from_address="0x" + "2" * 40,
                address_id=address_id,
                token_contract="0x" + "3" * 40,
                currency="USDT",
                amount=amount,
                decimals=18,
                status="pending",
                detected_at=moment,
            )
        )
    async with db.read() as conn:
        stored_amount, detected_at = (
            await conn.execute(select(deposit.c.amount, deposit.c.detected_at))
        ).one()
    assert stored_amount == amount
    assert detected_at == moment and detected_at.tzinfo is not None
    assert detected_at.astimezone(UTC).hour == 3


async def test_json_columns_keep_what_orjson_cannot_write(db: Database) -> None:
    """JSON columns go through orjson, and to the standard library for what it refuses."""
    payloads = [
        {"amount": "1.5", "nested": {"list": [1, None, True]}, "text": "naïve ✓"},
        {"huge": 2**80 + 1},  # beyond 64 bits, and not a float either
        {1: "a key that is not a string"},
    ]
    async with db.write() as conn:
        for n, data in enumerate(payloads):
            await conn.execute(
                insert(event).values(
                    id=f"evt_json{n}", type="test.json", data=data, created_at=datetime.now(UTC)
                )
            )
    async with db.read() as conn:
        rows = await conn.execute(
            select(event.c.data).where(event.c.type == "test.json").order_by(event.c.seq)
        )
        stored = [row.data for row in rows]
    assert stored == [payloads[0], {"huge": 2**80 + 1}, {"1": "a key that is not a string"}]
    assert type(stored[1]["huge"]) is int
    assert dumps_json({"a": 1}) == '{"a":1}'  # orjson's compact form: the fast path was taken


async def test_bulk_inserts_keep_huge_amounts_timestamps_and_awkward_json(db: Database) -> None:
    """The watcher's own paths (pool.kit.bulk): JSON records on PostgreSQL, multi-row
    statements on SQLite. 10 USDT of 18 decimals is already beyond 64 bits."""
    moment = datetime(2026, 11, 21, 10, 30, 0, 123000, tzinfo=timezone(timedelta(hours=7)))
    amounts = [10 * 10**18, 2**200 + 12345, 0]
    async with db.write() as conn:
        address_id = (
            await conn.execute(
                insert(address)
                .values(
                    protocol="evm", address="0x" + "1" * 40, hex20="1" * 40,
                    status="available", created_at=moment,
                )
                .returning(address.c.id)
            )
        ).scalar_one()  # fmt: skip
        rows = [
            _deposit_row(f"dep_{n}", address_id, amount, moment) for n, amount in enumerate(amounts)
        ]
        written, computed = await insert_deposits(conn, rows, meanwhile=lambda: "built")
        # The same natural key again, beside a new one: only the new one is written (on
        # PostgreSQL the plain insert fails, and is redone from its savepoint with ON CONFLICT).
        late = _deposit_row("dep_3", address_id, 7, moment)
        again, _ = await insert_deposits(conn, [rows[0], late], meanwhile=lambda: None)
        await insert_events(
            conn,
            events=[
                ("evt_bulk0", "test.bulk", {"huge": 2**80 + 1}),
                ("evt_bulk1", "test.bulk", {"t": "✓"}),
            ],
            now=moment,
        )
    async with db.read() as conn:
        stored = (
            await conn.execute(
                select(deposit.c.amount, deposit.c.detected_at).order_by(deposit.c.id)
            )
        ).all()
        data = (
            await conn.execute(select(event.c.data).where(event.c.type == "test.bulk").order_by(event.c.seq))
        ).scalars().all()  # fmt: skip
    assert written == {"dep_0", "dep_1", "dep_2"}
    assert computed == "built"
    if not db.is_sqlite:  # SQLite reports what it was given: its caller read first
        assert again == {"dep_3"}
    assert [amount for amount, _ in stored] == [*amounts, 7]
    assert all(at == moment for _, at in stored)
    assert data == [{"huge": 2**80 + 1}, {"t": "✓"}]


def _deposit_row(id_: str, address_id: int, amount: int, moment: datetime) -> dict[str, object]:
    return {
        "id": id_,
        "chain_id": "ethereum-sepolia",
        "tx_hash": "0x" + id_[-1] * 64,
        "log_index": 0,
        "block_number": 1,
        "block_hash": "0x" + "cd" * 32,
        "from_address": "0x" + "2" * 40,
        "address_id": address_id,
        "binding_id": None,
        "token_contract": "0x" + "3" * 40,
        "currency": "USDT",
        "amount": amount,
        "decimals": 18,
        "status": "confirmed",
        "late": False,
        "detected_at": moment,
        "confirmed_at": moment,
    }


def test_json_text_writes_datetimes_alike_on_both_paths() -> None:
    """The standard library's fallback (a >64-bit integer beside) writes them as orjson does."""
    moment = datetime(2026, 11, 21, 10, 30, 0, 123000, tzinfo=UTC)
    fast, fallback = dumps_json({"at": moment}), dumps_json({"at": moment, "huge": 2**80})
    assert fast == '{"at":"2026-11-21T10:30:00.123000+00:00"}'
    assert json.loads(fallback) == {"at": "2026-11-21T10:30:00.123000+00:00", "huge": 2**80}
