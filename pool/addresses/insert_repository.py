"""SQL that adds imported addresses to the address table, and the statistics the planner needs
once the table has grown (see pool.addresses.importer and pool.addresses.staged_import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.bulk import insert_rows
from pool.kit.tables import address

IMPORT_COLUMNS = (
    "protocol",
    "address",
    "hex20",
    "status",
    "import_batch_id",
    "master_key_id",
    "derivation_index",
    "created_at",
)
_STAGING = "address_import_staging"


async def insert_new_addresses(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Add addresses, leaving any already in the pool (same protocol and bytes) as they are.

    Returns how many were added on PostgreSQL; on SQLite the rows given (its multi-row
    statements report no count: its callers count their batch instead)."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return await _copy_new_addresses(conn, rows)
    # Multi-row statements (pool.kit.bulk): an import in `serve` shares a busy event loop.
    await insert_rows(conn, address, rows, suffix="ON CONFLICT DO NOTHING")
    return len(rows)


async def reserve_ids(conn: AsyncConnection, count: int) -> list[int]:
    """PostgreSQL: `count` new address ids from the table's sequence, ascending.

    An import hands them out in its input's order (the pool gives never-used addresses in id
    order: import order) and then writes its rows in address order (`_copy_new_addresses`).
    Ids taken by rows already in the pool stay unused, as a conflicting insert's always did."""
    if count <= 0:
        return []
    rows = await conn.execute(
        text(
            "SELECT nextval(pg_get_serial_sequence('address', 'id')) "
            "FROM generate_series(1, :count)"
        ),
        {"count": count},
    )
    return sorted(int(row[0]) for row in rows.all())


async def refresh_statistics(conn: AsyncConnection) -> None:
    """Let the planner see a pool that just grew by an import, on both databases.

    PostgreSQL plans on the old row count until the table is analysed: after a first import of a
    million addresses, the watcher's recipient look-up (`hex20 IN (...)`, a thousand values) chose a
    scan of every address over the unique index, several times slower (docs/performance.md), and
    autovacuum, when it is on at all, analyses only a while later. Run in the import's own
    transaction, whose new rows ANALYZE counts as live.

    SQLite without statistics takes any equality on an indexed column to be selective: the address
    book's refresh (`protocol = ? AND id > ?`, once a poll) walked all million addresses of the
    protocol index and sorted them instead of reading a rowid range, and ANALYZE itself is cheap
    (docs/performance.md). The claims plan the same with statistics as without (checked with EXPLAIN
    QUERY PLAN).
    """
    await conn.execute(text("ANALYZE address"))


async def address_indexes(conn: AsyncConnection) -> list[str]:
    """SQLite: the address table's indexes by name, those behind its unique constraints
    included, for `analyze_index`."""
    rows = await conn.execute(text("PRAGMA index_list(address)"))
    return sorted(str(row[1]) for row in rows.all())


async def analyze_index(conn: AsyncConnection, *, name: str) -> None:
    """SQLite: `refresh_statistics` for one of the address table's indexes (what ANALYZE of the
    table does for each in turn): a staged import analyses them one write at a time, so that
    no write holds the database for the whole table (about 1.4 s a million on a loaded box)."""
    quoted = name.replace('"', '""')
    await conn.execute(text(f'ANALYZE "{quoted}"'))


async def _copy_new_addresses(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> int:
    """COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING in address order.

    COPY is several times faster than a multi-row INSERT for large imports; the staging
    table lives until the transaction ends. Rows that carry an `id` (`reserve_ids`) keep it.

    In address order: each row goes into the unique index on (protocol, hex20) — and, nearly
    in the same order, the one on the address text — so consecutive rows land on the same or
    the next leaf. In input order (random for addresses) every row touched a random leaf of
    both indexes: once they outgrow the buffer cache each row cost a page read and, after every
    checkpoint, a full-page image in the WAL, and each million imported took longer than the
    one before (docs/performance.md).
    """
    await conn.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} "
            "(LIKE address INCLUDING DEFAULTS EXCLUDING CONSTRAINTS) ON COMMIT DROP"
        )
    )
    await conn.execute(text(f"TRUNCATE {_STAGING}"))
    raw = await conn.get_raw_connection()
    # Without ids of their own, rows take theirs from the staging table's default (the
    # address sequence, copied by LIKE … INCLUDING DEFAULTS) as COPY writes them: input order.
    names = ("id", *IMPORT_COLUMNS) if "id" in rows[0] else IMPORT_COLUMNS
    records = [tuple(row[column] for column in names) for row in rows]
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        _STAGING, records=records, columns=names
    )
    columns = ", ".join(("id", *IMPORT_COLUMNS))
    done = await conn.execute(
        text(
            f"INSERT INTO address ({columns}) SELECT {columns} FROM {_STAGING} "  # noqa: S608 - constant names
            "ORDER BY protocol, hex20 ON CONFLICT DO NOTHING"
        )
    )
    return int(done.rowcount)
