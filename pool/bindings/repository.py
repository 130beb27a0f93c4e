"""SQL for the binding table. Partial unique indexes make a lost race an IntegrityError."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.bindings.records import Binding
from pool.kit.errors import RaceLost
from pool.kit.tables import address, binding
from pool.vocabulary import Protocol


@dataclass(frozen=True, slots=True)
class BindingRow:
    binding: Binding
    address_id: int


_BINDING_COLUMNS = (
    binding.c.id,
    binding.c.deposit_reference,
    binding.c.protocol,
    address.c.address,
    binding.c.metadata,
    binding.c.bound_at,
    binding.c.unbound_at,
    binding.c.cooldown_until,
    binding.c.address_id,
)


def _to_row(row: Any) -> BindingRow:
    return BindingRow(binding=Binding(*row[:8]), address_id=row[8])


_LATEST_BINDING = (
    select(*_BINDING_COLUMNS)
    .join(address, address.c.id == binding.c.address_id)
    .where(
        binding.c.protocol == bindparam("protocol"),
        binding.c.deposit_reference == bindparam("reference"),
    )
    .order_by(binding.c.unbound_at.is_not(None), binding.c.bound_at.desc(), binding.c.id.desc())
    .limit(1)
)
# Built once: a bind runs these on every call (see pool.addresses.repository).
INSERT_BINDING = insert(binding).returning(binding.c.id)


async def latest_binding(
    conn: AsyncConnection, *, protocol: Protocol, reference: str
) -> BindingRow | None:
    """The active binding of the reference if any, else its most recent past one."""
    parameters = {"protocol": protocol, "reference": reference}
    row = (await conn.execute(_LATEST_BINDING, parameters)).first()
    return _to_row(row) if row else None


async def active_bindings(
    conn: AsyncConnection, *, reference: str, protocol: Protocol | None = None
) -> list[BindingRow]:
    statement = (
        select(*_BINDING_COLUMNS)
        .join(address, address.c.id == binding.c.address_id)
        .where(binding.c.deposit_reference == reference, binding.c.unbound_at.is_(None))
        .order_by(binding.c.bound_at, binding.c.id)
    )
    if protocol is not None:
        statement = statement.where(binding.c.protocol == protocol)
    return [_to_row(row) for row in (await conn.execute(statement)).all()]


async def reference_history(
    conn: AsyncConnection, *, reference: str, protocol: Protocol
) -> list[Binding]:
    statement = (
        select(*_BINDING_COLUMNS)
        .join(address, address.c.id == binding.c.address_id)
        .where(binding.c.deposit_reference == reference, binding.c.protocol == protocol)
        .order_by(binding.c.bound_at.desc(), binding.c.id.desc())
        .limit(100)
    )
    return [_to_row(row).binding for row in (await conn.execute(statement)).all()]


async def insert_binding(
    conn: AsyncConnection,
    *,
    reference: str,
    protocol: Protocol,
    address_id: int,
    metadata: dict[str, Any] | None,
    actor: str,
    now: datetime,
) -> int:
    values = {
        "deposit_reference": reference,
        "protocol": protocol,
        "address_id": address_id,
        "metadata": metadata,
        "bound_at": now,
        "bound_by": actor,
    }
    try:
        return int((await conn.execute(INSERT_BINDING, values)).scalar_one())
    except IntegrityError as exc:
        # Another transaction bound this reference (or address) first: retry from the top.
        raise RaceLost("a concurrent bind won; retrying") from exc


async def end_active_bindings(
    conn: AsyncConnection,
    *,
    actor: str,
    now: datetime,
    cooldown_until: datetime,
    reference: str | None = None,
    protocol: Protocol | None = None,
    address_id: int | None = None,
) -> list[tuple[str, Protocol, int]]:
    """Unbind in one statement; a concurrent unbind of the same rows finds nothing left."""
    statement = (
        update(binding)
        .where(binding.c.unbound_at.is_(None))
        .values(unbound_at=now, unbound_by=actor, cooldown_until=cooldown_until)
        .returning(binding.c.deposit_reference, binding.c.protocol, binding.c.address_id)
    )
    if reference is not None:
        statement = statement.where(binding.c.deposit_reference == reference)
    if protocol is not None:
        statement = statement.where(binding.c.protocol == protocol)
    if address_id is not None:
        statement = statement.where(binding.c.address_id == address_id)
    return [(row[0], row[1], row[2]) for row in (await conn.execute(statement)).all()]


async def list_active_references(
    conn: AsyncConnection,
    *,
    protocol: Protocol | None,
    search: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Binding], int]:
    statement = (
        select(*_BINDING_COLUMNS)
        .join(address, address.c.id == binding.c.address_id)
        .where(binding.c.unbound_at.is_(None))
    )
    if protocol is not None:
        statement = statement.where(binding.c.protocol == protocol)
    if search:
        statement = statement.where(binding.c.deposit_reference.contains(search, autoescape=True))
    total = await conn.scalar(select(func.count()).select_from(statement.subquery()))
    page = statement.order_by(binding.c.bound_at, binding.c.id).offset(offset).limit(limit)
    rows = [_to_row(row).binding for row in (await conn.execute(page)).all()]
    return rows, int(total or 0)


async def holds_address(conn: AsyncConnection, *, address_id: int) -> bool:
    """Whether any reference holds this address right now."""
    found = await conn.scalar(
        select(binding.c.id).where(
            binding.c.address_id == address_id, binding.c.unbound_at.is_(None)
        )
    )
    return found is not None
