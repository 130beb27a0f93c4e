"""SQL for deposits: listing with filters and per-reference totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from pool.kit.tables import address, binding, chain_cursor, deposit
from pool.vocabulary import CREDITED, DepositStatus, Protocol


@dataclass(frozen=True, slots=True)
class DepositRow:
    id: str
    deposit_reference: str | None
    address: str
    protocol: Protocol
    chain_id: str
    currency: str
    amount: int
    decimals: int
    tx_hash: str
    log_index: int
    block_number: int
    from_address: str
    status: DepositStatus
    late: bool
    detected_at: datetime
    confirmed_at: datetime | None
    completed_at: datetime | None
    chain_head: int | None
    required_confirmations: int | None
    # An operator's resolution (pool/deposits/resolution.py); None on almost every row.
    resolution: str | None = None
    resolution_note: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    trace_position: str = ""  # a native deposit's (chains.evm.native); "" for a token's


@dataclass(frozen=True, slots=True)
class DepositFilters:
    deposit_reference: str | None = None
    status: str | None = None
    chain_id: str | None = None
    currency: str | None = None
    address: str | None = None
    deposit_id: str | None = None
    # The console's filters besides the API's.
    unattributed: bool = False  # no binding and no order took it
    late: bool = False
    detected_after: datetime | None = None
    detected_before: datetime | None = None


def deposits_query(filters: DepositFilters) -> Select[Any]:
    statement = select(
        deposit.c.id,
        binding.c.deposit_reference,
        address.c.address,
        address.c.protocol,
        deposit.c.chain_id,
        deposit.c.currency,
        deposit.c.amount,
        deposit.c.decimals,
        deposit.c.tx_hash,
        deposit.c.log_index,
        deposit.c.block_number,
        deposit.c.from_address,
        deposit.c.status,
        deposit.c.late,
        deposit.c.detected_at,
        deposit.c.confirmed_at,
        deposit.c.completed_at,
        chain_cursor.c.head,
        chain_cursor.c.confirmations,
        deposit.c.resolution,
        deposit.c.resolution_note,
        deposit.c.resolved_by,
        deposit.c.resolved_at,
        deposit.c.trace_position,
    ).select_from(
        deposit.join(address, address.c.id == deposit.c.address_id)
        .outerjoin(binding, binding.c.id == deposit.c.binding_id)
        .outerjoin(chain_cursor, chain_cursor.c.chain_id == deposit.c.chain_id)
    )
    conditions = {
        binding.c.deposit_reference: filters.deposit_reference,
        deposit.c.status: filters.status,
        deposit.c.chain_id: filters.chain_id,
        deposit.c.currency: filters.currency,
        address.c.address: filters.address,
        deposit.c.id: filters.deposit_id,
    }
    for column, value in conditions.items():
        if value is not None:
            statement = statement.where(column == value)
    if filters.unattributed:
        statement = statement.where(deposit.c.binding_id.is_(None), deposit.c.order_id.is_(None))
    if filters.late:
        statement = statement.where(deposit.c.late.is_(True))
    if filters.detected_after is not None:
        statement = statement.where(deposit.c.detected_at >= filters.detected_after)
    if filters.detected_before is not None:
        statement = statement.where(deposit.c.detected_at < filters.detected_before)
    return statement


def deposits_in_order(filters: DepositFilters) -> Select[Any]:
    """The listing's statement, newest first (a page of it, or all of it for an export)."""
    return deposits_query(filters).order_by(deposit.c.detected_at.desc(), deposit.c.id)


async def list_deposits(
    conn: AsyncConnection, *, filters: DepositFilters, offset: int, limit: int
) -> tuple[list[DepositRow], int]:
    listing = deposits_query(filters)
    total = await conn.scalar(select(func.count()).select_from(listing.subquery()))
    page = deposits_in_order(filters).offset(offset).limit(limit)
    rows = [DepositRow(*row) for row in (await conn.execute(page)).all()]
    return rows, int(total or 0)


async def deposits_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, DepositRow]:
    found: dict[str, DepositRow] = {}
    listing = deposits_query(DepositFilters())
    for start in range(0, len(ids), 1000):  # bounded IN lists (PostgreSQL: 32,767 parameters)
        statement = listing.where(deposit.c.id.in_(list(ids[start : start + 1000])))
        for row in (await conn.execute(statement)).all():
            found[row[0]] = DepositRow(*row)
    return found


async def credited_totals(
    conn: AsyncConnection, *, protocol: Protocol, references: Sequence[str]
) -> dict[str, list[tuple[str, int, int]]]:
    """reference → [(currency, decimals, base units)] of its confirmed/completed deposits.

    Summed by the caller in Python: SQLite's SUM over TEXT amounts goes through a lossy REAL.
    """
    if not references:
        return {}
    statement = (
        select(
            binding.c.deposit_reference, deposit.c.currency, deposit.c.decimals, deposit.c.amount
        )
        .select_from(deposit.join(binding, binding.c.id == deposit.c.binding_id))
        .where(
            binding.c.protocol == protocol,
            binding.c.deposit_reference.in_(references),
            deposit.c.status.in_(CREDITED),
        )
    )
    totals: dict[str, list[tuple[str, int, int]]] = {}
    for reference, currency, decimals, amount in (await conn.execute(statement)).all():
        totals.setdefault(reference, []).append((currency, decimals, amount))
    return totals
