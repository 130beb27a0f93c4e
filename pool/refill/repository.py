"""SQL for the keys that refill the pool: their switches, and the claim of an index range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.tables import address, key_refill, master_key
from pool.vocabulary import PROTOCOLS, Protocol


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    id: int
    protocol: Protocol
    public_key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class KeyRefill:
    id: int
    key: RegisteredKey
    branch: int
    enabled: bool
    next_index: int
    max_index: int  # inclusive
    low_water: int | None  # None: the [refill] setting
    batch_size: int | None  # None: the [refill] setting
    refilled_at: datetime | None

    @property
    def remaining(self) -> int:
        """Indices it may still derive."""
        return max(0, self.max_index + 1 - self.next_index)


_KEY_COLUMNS = (master_key.c.id, master_key.c.protocol, master_key.c.public_key,
                master_key.c.fingerprint)  # fmt: skip
_REFILLS = select(
    key_refill.c.id.label("refill_id"),
    master_key.c.id.label("key_id"),
    master_key.c.protocol,
    master_key.c.public_key,
    master_key.c.fingerprint,
    key_refill.c.branch,
    key_refill.c.enabled,
    key_refill.c.next_index,
    key_refill.c.max_index,
    key_refill.c.low_water,
    key_refill.c.batch_size,
    key_refill.c.refilled_at,
).join(master_key, master_key.c.id == key_refill.c.master_key_id)


def _refill(row: Row[Any, *tuple[Any, ...]]) -> KeyRefill:
    values = row._mapping
    key = RegisteredKey(
        int(values["key_id"]),
        values["protocol"],
        str(values["public_key"]),
        str(values["fingerprint"]),
    )
    return KeyRefill(
        id=int(values["refill_id"]),
        key=key,
        branch=int(values["branch"]),
        enabled=bool(values["enabled"]),
        next_index=int(values["next_index"]),
        max_index=int(values["max_index"]),
        low_water=values["low_water"],
        batch_size=values["batch_size"],
        refilled_at=values["refilled_at"],
    )


async def registered_keys(
    conn: AsyncConnection, *, protocol: Protocol, public_key: str | None, fingerprint: str | None
) -> list[RegisteredKey]:
    """The protocol's registered keys with this text or this fingerprint."""
    statement = select(*_KEY_COLUMNS).where(master_key.c.protocol == protocol)
    if public_key is not None:
        statement = statement.where(master_key.c.public_key == public_key)
    if fingerprint is not None:
        statement = statement.where(func.lower(master_key.c.fingerprint) == fingerprint.lower())
    rows = (await conn.execute(statement.order_by(master_key.c.id))).all()
    return [RegisteredKey(int(r[0]), r[1], str(r[2]), str(r[3])) for r in rows]


async def highest_index(conn: AsyncConnection, *, key_id: int) -> tuple[int, str] | None:
    """The highest derivation index among the key's addresses, and that address's hex20."""
    highest = (
        select(func.max(address.c.derivation_index))
        .where(address.c.master_key_id == key_id)
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            select(address.c.derivation_index, address.c.hex20)
            .where(address.c.master_key_id == key_id, address.c.derivation_index == highest)
            .limit(1)
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def refill_of(conn: AsyncConnection, *, key_id: int, branch: int) -> KeyRefill | None:
    statement = _REFILLS.where(key_refill.c.master_key_id == key_id, key_refill.c.branch == branch)
    row = (await conn.execute(statement)).first()
    return None if row is None else _refill(row)


async def all_refills(conn: AsyncConnection, *, enabled_only: bool = False) -> list[KeyRefill]:
    statement = _REFILLS.order_by(key_refill.c.id)
    if enabled_only:
        statement = statement.where(key_refill.c.enabled.is_(True))
    return [_refill(row) for row in (await conn.execute(statement)).all()]


async def insert_refill(
    conn: AsyncConnection,
    *,
    key_id: int,
    branch: int,
    next_index: int,
    max_index: int,
    low_water: int | None,
    batch_size: int | None,
    now: datetime,
) -> None:
    await conn.execute(
        key_refill.insert().values(
            master_key_id=key_id,
            branch=branch,
            enabled=True,
            next_index=next_index,
            max_index=max_index,
            low_water=low_water,
            batch_size=batch_size,
            created_at=now,
            updated_at=now,
        )
    )


async def update_refill(
    conn: AsyncConnection,
    *,
    refill_id: int,
    enabled: bool,
    max_index: int,
    low_water: int | None,
    batch_size: int | None,
    now: datetime,
) -> None:
    """The switch and the operator's values; never `next_index`, which only a claim moves."""
    await conn.execute(
        update(key_refill)
        .where(key_refill.c.id == refill_id)
        .values(
            enabled=enabled,
            max_index=max_index,
            low_water=low_water,
            batch_size=batch_size,
            updated_at=now,
        )
    )


async def claim_range(
    conn: AsyncConnection, *, refill_id: int, start: int, end: int, now: datetime
) -> bool:
    """Take indices [start, end) for this transaction's import, if nobody took them first.

    Conditional on `next_index` still being `start`: a second worker that planned the same
    range waits for the first one's row lock (PostgreSQL) or the writer (SQLite), then finds
    the index moved and updates nothing. The refill must still be on, and the range within
    its maximum (an operator may have lowered it meanwhile)."""
    result = await conn.execute(
        update(key_refill)
        .where(
            key_refill.c.id == refill_id,
            key_refill.c.next_index == start,
            key_refill.c.enabled.is_(True),
            key_refill.c.max_index >= end - 1,
        )
        .values(next_index=end, refilled_at=now, updated_at=now)
    )
    return bool(result.rowcount)


async def refill_headroom(conn: AsyncConnection) -> dict[Protocol, int]:
    """Per protocol, the addresses the enabled refills may still derive."""
    left = func.sum(key_refill.c.max_index + 1 - key_refill.c.next_index)
    rows = await conn.execute(
        select(master_key.c.protocol, left)
        .join(master_key, master_key.c.id == key_refill.c.master_key_id)
        .where(key_refill.c.enabled.is_(True), key_refill.c.next_index <= key_refill.c.max_index)
        .group_by(master_key.c.protocol)
    )
    found = {str(protocol): int(n or 0) for protocol, n in rows.all()}
    return {protocol: found.get(protocol, 0) for protocol in PROTOCOLS}
