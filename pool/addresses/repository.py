"""SQL for the address table: the claims, status changes, counts and listings (imports add their
rows through pool.addresses.insert_repository).

A row whose status is `importing` belongs to an import that has not finished (SQLite,
pool.addresses.staged_import): it is not the pool's yet, so no query here finds, counts or lists
it; the claims take `available` rows only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from pool.kit.tables import address, binding, master_key
from pool.vocabulary import (
    ALLOCATED,
    ARCHIVED,
    AVAILABLE,
    BOUND,
    COOLING_DOWN,
    IMPORTING,
    Protocol,
)

# Rows that are the pool's: every status but that of an unfinished import.
IN_POOL = address.c.status != IMPORTING


@dataclass(frozen=True, slots=True)
class ClaimedAddress:
    id: int
    text: str


@dataclass(frozen=True, slots=True)
class AddressRow:
    id: int
    protocol: Protocol
    text: str
    status: str
    derivation_index: int | None
    cooldown_until: datetime | None
    created_at: datetime
    deposit_reference: str | None
    bound_at: datetime | None


# The claims are built once, with bind parameters: building SQLAlchemy expressions per call
# costs more than SQLite takes to run them, and a bind is on the hot path. (`p_` because an
# UPDATE reserves its columns' names for its own parameters.)
_NEXT_FREE = (
    select(address.c.id)
    .where(
        address.c.protocol == bindparam("p_protocol"),
        address.c.status == AVAILABLE,
        or_(address.c.cooldown_until.is_(None), address.c.cooldown_until <= bindparam("p_now")),
    )
    .order_by(address.c.recycled_at.asc().nullsfirst(), address.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)

CLAIM_NEXT_FREE = (
    update(address)
    .where(address.c.id == _NEXT_FREE, address.c.status == AVAILABLE)
    .values(status=BOUND, last_reference=bindparam("p_reference"))
    .returning(address.c.id, address.c.address)
)

_PREVIOUS_ADDRESS = (
    select(binding.c.address_id)
    .where(
        binding.c.protocol == bindparam("p_protocol"),
        binding.c.deposit_reference == bindparam("p_reference"),
    )
    .order_by(binding.c.bound_at.desc(), binding.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
_RECLAIMABLE = (
    select(address.c.id)
    .where(
        address.c.id == _PREVIOUS_ADDRESS,
        address.c.status == AVAILABLE,
        address.c.last_reference == bindparam("p_reference"),
    )
    .scalar_subquery()
)
_ALREADY_BOUND = (
    select(binding.c.id)
    .where(
        binding.c.protocol == bindparam("p_protocol"),
        binding.c.deposit_reference == bindparam("p_reference"),
        binding.c.unbound_at.is_(None),
    )
    .exists()
)
CLAIM_FOR_REFERENCE = (
    update(address)
    .where(
        address.c.id == func.coalesce(_RECLAIMABLE, _NEXT_FREE),
        address.c.status == AVAILABLE,
        ~_ALREADY_BOUND,
    )
    .values(status=BOUND, last_reference=bindparam("p_reference"))
    .returning(address.c.id, address.c.address)
)


async def claim_available_address(
    conn: AsyncConnection, *, protocol: Protocol, reference: str, now: datetime
) -> ClaimedAddress | None:
    """One statement: lock the next free address (skipping rows other claims hold) and take it.

    Order: never-used first (NULL `recycled_at`), then the longest-recycled. On SQLite the
    surrounding BEGIN IMMEDIATE already makes this the only writer.
    """
    parameters = {"p_protocol": protocol, "p_reference": reference, "p_now": now}
    row = (await conn.execute(CLAIM_NEXT_FREE, parameters)).first()
    return ClaimedAddress(id=row[0], text=row[1]) if row else None


async def claim_for_reference(
    conn: AsyncConnection, *, protocol: Protocol, reference: str, now: datetime
) -> ClaimedAddress | None:
    """One statement: the reference's previous address if still free, else the next free one.

    Claims nothing when the reference already has an active binding (the caller reads it then).
    Used where a bind is a short transaction of several statements (SQLite); PostgreSQL folds
    this, the binding and its event into one statement (`pool.bindings.claim_repository`).
    """
    parameters = {"p_protocol": protocol, "p_reference": reference, "p_now": now}
    row = (await conn.execute(CLAIM_FOR_REFERENCE, parameters)).first()
    return ClaimedAddress(id=row[0], text=row[1]) if row else None


async def release_address(
    conn: AsyncConnection,
    *,
    address_id: int,
    reference: str,
    now: datetime,
    cooldown_until: datetime,
) -> str:
    """Put an unbound address into cooldown; it stays the reference's to reclaim until taken."""
    statement = (
        update(address)
        .where(address.c.id == address_id)
        .values(
            status=AVAILABLE,
            last_reference=reference,
            recycled_at=now,
            cooldown_until=cooldown_until,
        )
        .returning(address.c.address)
    )
    text: str = (await conn.execute(statement)).scalar_one()
    return text


async def count_existing(
    conn: AsyncConnection, *, protocol: Protocol, hex20s: Sequence[str]
) -> int:
    existing = 0
    for start in range(0, len(hex20s), 5_000):
        chunk = hex20s[start : start + 5_000]
        statement = select(func.count()).where(
            address.c.protocol == protocol, address.c.hex20.in_(chunk), IN_POOL
        )
        existing += int(await conn.scalar(statement) or 0)
    return existing


async def find_address_id(conn: AsyncConnection, *, protocol: Protocol, text: str) -> int | None:
    statement = select(address.c.id).where(
        address.c.protocol == protocol, address.c.address == text, IN_POOL
    )
    return await conn.scalar(statement)


async def set_archived(conn: AsyncConnection, *, address_id: int, archived: bool) -> str | None:
    """Archive an unbound address or unarchive an archived one; returns the status it had.

    A bound address, or one allocated to a pending order, is left as it is: unarchiving it
    would hand it out a second time (invariants 1 and 13, docs/design.md)."""
    current: str | None = await conn.scalar(
        select(address.c.status).where(address.c.id == address_id).with_for_update()
    )
    if current is None or current in (BOUND, ALLOCATED):
        return current
    await conn.execute(
        update(address)
        .where(address.c.id == address_id)
        .values(status=ARCHIVED if archived else AVAILABLE)
    )
    return current


async def full_count_by_state(
    conn: AsyncConnection, *, now: datetime
) -> dict[tuple[str, str], int]:
    """(protocol, state) → count, where state splits `available` into free and cooling down.

    Counts the whole table (about a second a million rows): what the kept counts of
    pool.addresses.counts, which the summary reads, must always equal."""
    cooling = and_(address.c.status == AVAILABLE, address.c.cooldown_until > now)
    statement = (
        select(
            address.c.protocol,
            address.c.status,
            func.count().filter(cooling).label("cooling"),
            func.count().label("total"),
        )
        .where(IN_POOL)
        .group_by(address.c.protocol, address.c.status)
    )
    counts: dict[tuple[str, str], int] = {}
    for protocol, status, cooling_count, total in (await conn.execute(statement)).all():
        if status == AVAILABLE:
            counts[(protocol, COOLING_DOWN)] = int(cooling_count)
            counts[(protocol, AVAILABLE)] = int(total) - int(cooling_count)
        else:
            counts[(protocol, status)] = int(total)
    return counts


def _listing(protocol: Protocol | None, status: str | None, now: datetime) -> Select[Any]:
    active = and_(binding.c.address_id == address.c.id, binding.c.unbound_at.is_(None))
    statement = select(
        address.c.id,
        address.c.protocol,
        address.c.address,
        address.c.status,
        address.c.derivation_index,
        address.c.cooldown_until,
        address.c.created_at,
        binding.c.deposit_reference,
        binding.c.bound_at,
    ).select_from(address.outerjoin(binding, active))
    statement = statement.where(IN_POOL)
    if protocol is not None:
        statement = statement.where(address.c.protocol == protocol)
    if status == COOLING_DOWN:
        statement = statement.where(address.c.status == AVAILABLE, address.c.cooldown_until > now)
    elif status == AVAILABLE:
        statement = statement.where(address.c.status == AVAILABLE, _not_cooling(now))
    elif status is not None:
        statement = statement.where(address.c.status == status)
    return statement


def _not_cooling(now: datetime) -> Any:
    return or_(address.c.cooldown_until.is_(None), address.c.cooldown_until <= now)


async def list_addresses(
    conn: AsyncConnection,
    *,
    protocol: Protocol | None,
    status: str | None,
    now: datetime,
    offset: int,
    limit: int,
) -> tuple[list[AddressRow], int]:
    listing = _listing(protocol, status, now)
    total = await conn.scalar(select(func.count()).select_from(listing.subquery()))
    page = listing.order_by(address.c.id).offset(offset).limit(limit)
    rows = [AddressRow(*row) for row in (await conn.execute(page)).all()]
    return rows, int(total or 0)


@dataclass(frozen=True, slots=True)
class KeyedAddress:
    text: str
    hex20: str
    derivation_index: int | None
    master_public_key: str | None


async def addresses_with_keys(conn: AsyncConnection, *, protocol: Protocol) -> list[KeyedAddress]:
    """Every pool address of a protocol with the index and key it was imported with."""
    statement = (
        select(
            address.c.address, address.c.hex20, address.c.derivation_index, master_key.c.public_key
        )
        .select_from(address.outerjoin(master_key, master_key.c.id == address.c.master_key_id))
        .where(address.c.protocol == protocol, IN_POOL)
        .order_by(address.c.id)
    )
    return [KeyedAddress(*row) for row in (await conn.execute(statement)).all()]


async def watch_list_after(
    conn: AsyncConnection, *, protocol: Protocol, after_id: int, limit: int
) -> list[tuple[int, str]]:
    """(id, hex20) of addresses imported after `after_id`: the watcher's incremental refresh.

    Rows of an unfinished import are left out: those of a committed one are read by batch
    (import_repository.importing_rows_after), and come here again once handed over."""
    rows = await conn.execute(
        select(address.c.id, address.c.hex20)
        .where(address.c.protocol == protocol, address.c.id > after_id, IN_POOL)
        .order_by(address.c.id)
        .limit(limit)
    )
    return [(int(row[0]), str(row[1])) for row in rows.all()]


async def copy_watch_list(
    conn: AsyncConnection, *, protocol: Protocol, output: Callable[[bytes], Awaitable[None]]
) -> int:
    """PostgreSQL: what `watch_list_after(after_id=0)` would page through, in one COPY — the
    hex20s as lines of text handed to `output` a chunk at a time, no row object made for any
    — for a watcher's first load. Returns the highest id it covers (0: none); a row committed
    later with a lower id is for the watcher's count check to find, as with the pages."""
    last_id = await conn.scalar(
        select(func.max(address.c.id)).where(address.c.protocol == protocol, IN_POOL)
    )
    if last_id is None:
        return 0
    statement = select(address.c.hex20).where(
        address.c.protocol == protocol, address.c.id <= int(last_id), IN_POOL
    )
    query = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_from_query(query, output=output)  # type: ignore[union-attr]
    return int(last_id)


async def count_protocol(conn: AsyncConnection, *, protocol: Protocol) -> int:
    """Every row of the protocol, an unfinished import's included."""
    total = await conn.scalar(
        select(func.count()).select_from(address).where(address.c.protocol == protocol)
    )
    return int(total or 0)


async def mark_bound(conn: AsyncConnection, *, address_id: int, reference: str) -> None:
    """Upstream mode: PayIn chose this address for `reference`; record it as ours would be."""
    await conn.execute(
        update(address)
        .where(address.c.id == address_id)
        .values(status=BOUND, last_reference=reference, cooldown_until=None)
    )
