"""Deposits (by chain), webhook deliveries and orders by status, as the database keeps them.

`status_count` is kept by triggers in the transaction of every write to `deposit`, `delivery`
and `payment_order` (migration 0027), so a /metrics scrape reads a few rows, not the history.
On PostgreSQL each writing transaction adds its changes to rows of its own (the slot is its
transaction id: no writer waits on another's counter row); `compact` folds the committed ones
into slot 0 and the worker runs it every few seconds (`run_compaction`), so a read sums the
labels' rows plus what the last seconds wrote. SQLite keeps slot 0 in place.

`full_count_mismatches` counts the tables themselves to prove the kept counts right (the
reconciler and `addrpool pool recount`); `recount` rebuilds them from the tables.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.db import Database
from pool.kit.loop import run_every
from pool.kit.tables import status_count

log = logging.getLogger(__name__)

COMPACT_EVERY = timedelta(seconds=5)

# subject → (table, the label's SQL over the table's row): as the triggers count (0027).
COUNTED = {
    "deposit": ("deposit", "chain_id"),
    "delivery": ("delivery", "''"),
    "order": ("payment_order", "''"),
}

_KEPT = select(
    status_count.c.subject, status_count.c.label, status_count.c.status, func.sum(status_count.c.n)
).group_by(status_count.c.subject, status_count.c.label, status_count.c.status)


@dataclass(frozen=True, slots=True)
class StatusCounts:
    deposits: dict[tuple[str, str], int] = field(default_factory=dict)  # (chain, status) → n
    deliveries: dict[str, int] = field(default_factory=dict)  # status → n
    orders: dict[str, int] = field(default_factory=dict)  # status → n


async def kept_status_counts(conn: AsyncConnection) -> StatusCounts:
    """The kept counts, one round trip; a status with no row counted is absent."""
    counts = StatusCounts()
    for subject, label, status, n in (await conn.execute(_KEPT)).all():
        if not n:
            continue
        if subject == "deposit":
            counts.deposits[(str(label), str(status))] = int(n)
        elif subject == "delivery":
            counts.deliveries[str(status)] = int(n)
        elif subject == "order":
            counts.orders[str(status)] = int(n)
    return counts


@dataclass(frozen=True, slots=True)
class StatusCountMismatch:
    subject: str
    label: str
    status: str
    kept: int
    counted: int


def _counted_from(subject: str, table: str, label: str) -> str:
    """One table's full count as the triggers keep it (names from COUNTED, no input)."""
    return f"SELECT '{subject}', {label}, status, 0, count(*) FROM {table} GROUP BY 2, 3"  # noqa: S608


_FULL_COUNTS = " UNION ALL ".join(_counted_from(s, t, la) for s, (t, la) in COUNTED.items())


# Both sides in one statement: one snapshot, so a write under way cannot make a false difference.
FULL_COUNT_MISMATCHES = text(
    f"""
    SELECT subject, label, status, sum(kept), sum(counted) FROM (
        SELECT subject, label, status, n AS kept, 0 AS counted FROM status_count
        UNION ALL {_FULL_COUNTS}
    ) AS both_sides
    GROUP BY subject, label, status HAVING sum(kept) <> sum(counted)
    ORDER BY subject, label, status
    """  # noqa: S608 - names from COUNTED
)


async def full_count_mismatches(conn: AsyncConnection) -> list[StatusCountMismatch]:
    """Every (subject, label, status) whose kept count differs from its table's full count."""
    rows = (await conn.execute(FULL_COUNT_MISMATCHES)).all()
    return [
        StatusCountMismatch(str(subject), str(label), str(status), int(kept), int(counted))
        for subject, label, status, kept, counted in rows
    ]


async def recount(conn: AsyncConnection) -> None:
    """Rebuild the kept counts from the tables, in the caller's (write) transaction.

    On PostgreSQL writers to the three tables wait (SHARE mode: reads go on) until the commit,
    so no write falls between the count and the commit; on SQLite the writer's lock does that."""
    if conn.dialect.name == "postgresql":
        tables = ", ".join(table for table, _ in COUNTED.values())
        await conn.execute(text(f"LOCK TABLE {tables} IN SHARE MODE"))
    await conn.execute(delete(status_count))
    for subject, (table, label) in COUNTED.items():
        counted = _counted_from(subject, table, label)
        await conn.execute(
            text(f"INSERT INTO status_count (subject, label, status, slot, n) {counted}")
        )


# The rows of committed transactions (an unfinished one's are not visible to the DELETE, so
# they stay for the next time) summed into slot 0, in one order: two compactions at once wait
# on slot 0's rows one after the other, never crosswise.
_COMPACT = text(
    """
    WITH folded AS (
        DELETE FROM status_count WHERE slot <> 0 RETURNING subject, label, status, n
    )
    INSERT INTO status_count (subject, label, status, slot, n)
    SELECT subject, label, status, 0, sum(n) FROM folded
    GROUP BY subject, label, status ORDER BY subject, label, status
    ON CONFLICT (subject, label, status, slot) DO UPDATE SET n = status_count.n + EXCLUDED.n
    """
)


async def compact(conn: AsyncConnection) -> None:
    """Fold the committed transactions' rows into slot 0 (PostgreSQL; SQLite has none)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_COMPACT)


async def run_compaction(db: Database, stop: asyncio.Event) -> None:
    """The worker's job on PostgreSQL: without it a read still sums right, but over every row
    the transactions since the last compaction wrote."""
    if db.is_sqlite:
        return

    async def step() -> None:
        async with db.write() as conn:
            await compact(conn)

    await run_every(
        stop,
        step,
        pause=COMPACT_EVERY.total_seconds(),
        log=log,
        failure="status count compaction failed; trying again",
    )
