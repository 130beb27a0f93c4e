"""The pool's counts as the database keeps them, and the full count they must equal.

`address_count` holds, per protocol and stored status, the number of addresses, kept by
triggers on `address` in the transaction of every write (migration 0022): reading it costs a
few dozen rows, whatever the size of the pool. Cooling down is a matter of time, not of a
write: the available addresses still cooling are counted through `ix_address_cooling`, a range
as long as the addresses cooling at once.

`full_count_mismatches` counts the table itself (seconds on ten million rows) to prove the kept
counts right; `recount` rebuilds them from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, bindparam, delete, func, literal, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import CompoundSelect, Select

from pool.kit.tables import address, address_count
from pool.vocabulary import AVAILABLE, COOLING_DOWN, PROTOCOLS

# Built once: the summary runs on every /metrics scrape.
_KEPT = select(address_count.c.protocol, address_count.c.status, func.sum(address_count.c.n))
_KEPT = _KEPT.group_by(address_count.c.protocol, address_count.c.status)


def _cooling(protocol: str) -> Select[str, str, int]:
    """One protocol's range of the cooling index: its addresses whose cooldown is ahead."""
    return select(literal(protocol, String), literal(COOLING_DOWN, String), func.count()).where(
        address.c.protocol == protocol,
        address.c.status == AVAILABLE,
        address.c.cooldown_until.is_not(None),
        address.c.cooldown_until > bindparam("p_now"),
    )


# The kept counts and the cooling ones in one round trip: on a busy server a round trip is
# most of what the summary costs.
_BY_STATE: CompoundSelect[str, str, int] = union_all(_KEPT, *(_cooling(p) for p in PROTOCOLS))


async def kept_counts(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """(protocol, stored status) → count, as kept: `available` includes those cooling down."""
    rows = (await conn.execute(_KEPT)).all()
    return {(protocol, status): int(n) for protocol, status, n in rows if n}


async def count_by_state(conn: AsyncConnection, *, now: datetime) -> dict[tuple[str, str], int]:
    """(protocol, state) → count, where state splits `available` into free and cooling down."""
    counts: dict[tuple[str, str], int] = {}
    for protocol, status, n in (await conn.execute(_BY_STATE, {"p_now": now})).all():
        counts[(str(protocol), str(status))] = int(n or 0)
    for protocol in PROTOCOLS:
        cooling = counts.get((protocol, COOLING_DOWN), 0)
        counts[(protocol, AVAILABLE)] = counts.get((protocol, AVAILABLE), 0) - cooling
    return {key: n for key, n in counts.items() if n or key[1] in (AVAILABLE, COOLING_DOWN)}


@dataclass(frozen=True, slots=True)
class CountMismatch:
    protocol: str
    status: str
    kept: int
    counted: int


# The slot a row is kept in, as the triggers choose it (migration 0022).
_SLOT = {"postgresql": "(id % 64)::integer", "sqlite": "0"}
_RECOUNT = """
    INSERT INTO address_count (protocol, status, slot, n)
    SELECT protocol, status, {slot}, count(*) FROM address
    WHERE status <> 'importing'
    GROUP BY 1, 2, 3
"""


# Both sides in one statement: one snapshot, so a bind under way cannot make a false difference.
FULL_COUNT_MISMATCHES = text(
    """
    SELECT protocol, status, sum(kept), sum(counted) FROM (
        SELECT protocol, status, n AS kept, 0 AS counted FROM address_count
        UNION ALL
        SELECT protocol, status, 0, count(*) FROM address
        WHERE status <> 'importing' GROUP BY protocol, status
    ) AS both_sides
    GROUP BY protocol, status HAVING sum(kept) <> sum(counted)
    ORDER BY protocol, status
    """
)


async def full_count_mismatches(conn: AsyncConnection) -> list[CountMismatch]:
    """Every (protocol, status) whose kept count differs from the table's full count."""
    rows = (await conn.execute(FULL_COUNT_MISMATCHES)).all()
    return [CountMismatch(str(p), str(s), int(k), int(c)) for p, s, k, c in rows]


async def recount(conn: AsyncConnection) -> None:
    """Rebuild the kept counts from the table, in the caller's (write) transaction.

    On PostgreSQL writers to `address` wait (SHARE mode: reads go on) until the commit, so no
    write falls between the count and the commit; on SQLite the writer's lock does that."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        await conn.execute(text("LOCK TABLE address IN SHARE MODE"))
    await conn.execute(delete(address_count))
    await conn.execute(text(_RECOUNT.format(slot=_SLOT[dialect])))
