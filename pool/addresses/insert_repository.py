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


async def stage_new_addresses(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    """PostgreSQL: COPY rows (values in IMPORT_COLUMNS' order) into the transaction's staging
    table, for `insert_staged`. Each row takes its id from the address sequence as COPY writes
    it (the staging table copies the column's default): ids in input order, so the pool still
    hands never-used addresses out in import order."""
    await conn.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} "
            "(LIKE address INCLUDING DEFAULTS EXCLUDING CONSTRAINTS) ON COMMIT DROP"
        )
    )
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        _STAGING, records=rows, columns=IMPORT_COLUMNS
    )


async def insert_staged(conn: AsyncConnection) -> int:
    """PostgreSQL: add the staged rows to the pool in address order, in one statement, those
    already in it left as they are; returns how many were added.

    In address order: each row goes into the unique index on (protocol, hex20) — and, nearly
    in the same order, the one on the address text — next to the one before it, and a leaf is
    written once and left for good. In input order (random, for addresses) each row went to a
    random leaf of both: once they outgrew the buffer cache every row cost a page read and,
    after every checkpoint, a full-page image in the WAL, and each million imported took longer
    than the one before (docs/performance.md). The count comes from the insert itself: counting
    the batch afterwards read the whole table (no index on the batch)."""
    columns = ", ".join(("id", *IMPORT_COLUMNS))
    done = await conn.execute(
        text(
            f"INSERT INTO address ({columns}) SELECT {columns} FROM {_STAGING} "  # noqa: S608 - constant names
            "ORDER BY protocol, hex20 ON CONFLICT DO NOTHING"
        )
    )
    await conn.execute(text(f"TRUNCATE {_STAGING}"))
    return int(done.rowcount)


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
    """COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING.

    COPY is several times faster than a multi-row INSERT for large imports; the staging
    table lives until the transaction ends."""
    await stage_new_addresses(conn, [tuple(row[c] for c in IMPORT_COLUMNS) for row in rows])
    return await insert_staged(conn)
