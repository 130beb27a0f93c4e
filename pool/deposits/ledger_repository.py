"""SQL for the deposit ledger as the watcher writes it: attribution, insert, confirm, revert."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.bulk import in_values, insert_json, insert_rows, list_parameter
from pool.kit.db import computed_while_waiting
from pool.kit.tables import address, binding, deposit, payment_order
from pool.orders.repository import OrderUse, order_use_columns
from pool.vocabulary import (
    ARCHIVED,
    CONFIRMED,
    DUST,
    ON_CHAIN,
    PENDING,
    REVERTED,
    DepositStatus,
    Protocol,
)

IN_CHUNK = 1000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Recipient:
    """A pool address a transfer reached, with the binding it is attributed to (if any)."""

    address_id: int
    hex20: str
    address: str  # canonical text, as deposit payloads show it
    archived: bool
    binding_id: int | None
    binding_active: bool
    deposit_reference: str | None  # of that binding
    bound_at: datetime | None = None  # of that binding
    order: OrderUse | None = None  # the address's latest order (pool/orders/linking.py)


# A deposit's identity within its chain: (tx hash, log index, trace position). A token transfer
# has its log index and trace position ""; a native one log index -1 and its trace position
# ("tx", "tx.0.1"; chains.evm.native).
DepositKey = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class KnownDeposit:
    id: str
    chain_id: str
    tx_hash: str
    log_index: int
    status: DepositStatus
    block_number: int
    block_hash: str
    binding_id: int | None
    trace_position: str = ""

    @property
    def key(self) -> DepositKey:
        return (self.tx_hash, self.log_index, self.trace_position)

    @property
    def announced(self) -> bool:
        """Receivers hear of attributed, non-dust deposits only (invariants 11 and 12,
        docs/design.md)."""
        return self.binding_id is not None and self.status != DUST


_KNOWN = (
    deposit.c.id,
    deposit.c.chain_id,
    deposit.c.tx_hash,
    deposit.c.log_index,
    deposit.c.status,
    deposit.c.block_number,
    deposit.c.block_hash,
    deposit.c.binding_id,
    deposit.c.trace_position,
)


def _recipients_statement(dialect: str) -> Any:
    """Built once per database (the watcher looks recipients up every range): the protocol
    and the hex20s are bind parameters. The address's latest order comes in the same query
    (an index probe on payment_order (address_id, created_at)), not in a second one."""
    history = binding.alias("history")
    latest = (
        select(history.c.id)
        .where(history.c.address_id == address.c.id)
        .order_by(history.c.bound_at.desc(), history.c.id.desc())
        .limit(1)
        .correlate(address)
        .scalar_subquery()
    )
    orders = payment_order.alias("orders")
    latest_order = (
        select(orders.c.id)
        .where(orders.c.address_id == address.c.id)
        .order_by(orders.c.created_at.desc(), orders.c.id.desc())
        .limit(1)
        .correlate(address)
        .scalar_subquery()
    )
    return (
        select(
            address.c.id,
            address.c.hex20,
            address.c.address,
            address.c.status,
            binding.c.id,
            binding.c.unbound_at,
            binding.c.deposit_reference,
            binding.c.bound_at,
            *order_use_columns(),
        )
        .select_from(
            address.outerjoin(binding, binding.c.id == latest).outerjoin(
                payment_order, payment_order.c.id == latest_order
            )
        )
        .where(
            address.c.protocol == bindparam("protocol"),
            in_values(dialect, address.c.hex20, list_parameter(dialect, "hex20s", address.c.hex20)),
        )
    )


_RECIPIENTS = {dialect: _recipients_statement(dialect) for dialect in ("sqlite", "postgresql")}


async def recipients(
    conn: AsyncConnection, *, protocol: Protocol, hex20s: Collection[str]
) -> dict[str, Recipient]:
    """hex20 → the pool address, its latest binding (active, or the last one unbound) and
    its latest order."""
    found: dict[str, Recipient] = {}
    for chunk in chunks(sorted(hex20s)):
        statement = _RECIPIENTS[conn.dialect.name]
        rows = await conn.execute(statement, {"protocol": protocol, "hex20s": chunk})
        for row in rows.all():
            address_id, hex20, text, status, binding_id, unbound_at, reference, bound_at = row[:8]
            order = None if row[8] is None else OrderUse(*row[8:])
            found[hex20] = Recipient(
                address_id,
                hex20,
                text,
                status == ARCHIVED,
                binding_id,
                binding_id is not None and unbound_at is None,
                reference,
                bound_at,
                order,
            )
    return found


async def known_deposits(
    conn: AsyncConnection, *, chain_id: str, keys: Collection[DepositKey]
) -> dict[DepositKey, KnownDeposit]:
    """(tx hash, log index, trace position) → the row already recorded for it (Invariant 5)."""
    wanted = set(keys)
    found: dict[DepositKey, KnownDeposit] = {}
    # By transaction hash, in chunks: a row-value IN over thousands of pairs exceeds
    # PostgreSQL's expression depth ("stack depth limit exceeded"; docs/performance.md).
    for chunk in chunks(sorted({key[0] for key in wanted})):
        statement = select(*_KNOWN).where(
            deposit.c.chain_id == chain_id, in_values(conn.dialect.name, deposit.c.tx_hash, chunk)
        )
        for row in (await conn.execute(statement)).all():
            known = KnownDeposit(*row)
            if known.key in wanted:
                found[known.key] = known
    return found


def chunks(values: Sequence[Any], size: int = IN_CHUNK) -> list[list[Any]]:
    """IN lists of bounded size: PostgreSQL takes at most 32,767 parameters a statement."""
    items = list(values)
    return [items[i : i + size] for i in range(0, len(items), size)]


_ONCE = "ON CONFLICT (chain_id, tx_hash, log_index, trace_position) DO NOTHING"


async def insert_deposits(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], meanwhile: Callable[[], T]
) -> tuple[set[str], T]:
    """On conflict do nothing: a concurrent rescan of the same range can only lose the race.
    Returns the ids this call inserted (the winner of such a race announces the deposit),
    and `meanwhile()`, computed while the database inserts (see pool.kit.db.computed_while_waiting).

    SQLite gets multi-row statements without RETURNING (see pool.kit.bulk). Nothing is
    lost by it: the caller's `BEGIN IMMEDIATE` transaction read which rows exist, and no other
    writer can have added one since, so every row given is inserted.
    """
    if not rows:
        return set(), meanwhile()
    if conn.dialect.name == "sqlite":
        _, computed = await computed_while_waiting(
            insert_rows(conn, deposit, rows, suffix=_ONCE), meanwhile
        )
        return {row["id"] for row in rows}, computed
    # A plain INSERT first, in a savepoint: ON CONFLICT inserts each row speculatively (an extra
    # index probe and WAL record a row), a real share of a range (docs/performance.md), to cover a
    # race a rescan rarely runs. Should it run, the insert is redone with the clause.
    savepoint = await conn.begin_nested()
    try:
        inserted, computed = await computed_while_waiting(
            insert_json(conn, deposit, rows, returning="id"), meanwhile
        )
    except UniqueViolationError:
        await savepoint.rollback()
        inserted = await insert_json(conn, deposit, rows, suffix=_ONCE, returning="id")
        computed = meanwhile()
    else:
        await savepoint.commit()
    return {str(id_) for id_ in inserted}, computed


async def reopen_deposit(
    conn: AsyncConnection,
    *,
    deposit_id: str,
    status: DepositStatus,
    block_number: int,
    block_hash: str,
    block_time: datetime | None = None,
) -> bool:
    """A reverted transaction re-included on the canonical chain: same row, new block."""
    result = await conn.execute(
        update(deposit)
        .where(deposit.c.id == deposit_id, deposit.c.status == REVERTED)
        .values(
            status=status,
            block_number=block_number,
            block_hash=block_hash,
            block_time=block_time,
            reverted_at=None,
            confirmed_at=None,
        )
    )
    return result.rowcount == 1


async def pending_up_to(
    conn: AsyncConnection, *, chain_id: str, block_number: int
) -> list[KnownDeposit]:
    """Pending deposits deep enough to be confirmed once their block is re-verified."""
    statement = select(*_KNOWN).where(
        deposit.c.chain_id == chain_id,
        deposit.c.status == PENDING,
        deposit.c.block_number <= block_number,
    )
    return [KnownDeposit(*row) for row in (await conn.execute(statement)).all()]


async def mark_all_confirmed(
    conn: AsyncConnection, *, deposit_ids: Sequence[str], now: datetime
) -> list[str]:
    """Pending → confirmed for these ids (their block hashes were just re-verified by the
    caller); returns the ids that changed."""
    changed: list[str] = []
    for chunk in chunks(deposit_ids):
        result = await conn.execute(
            update(deposit)
            .where(deposit.c.id.in_(chunk), deposit.c.status == PENDING)
            .values(status=CONFIRMED, confirmed_at=now)
            .returning(deposit.c.id)
        )
        changed.extend(str(value) for value in result.scalars().all())
    return changed


async def live_above(
    conn: AsyncConnection, *, chain_id: str, block_number: int
) -> list[KnownDeposit]:
    """Recorded deposits above a block: what a reorg back to that block orphans."""
    statement = select(*_KNOWN).where(
        and_(
            deposit.c.chain_id == chain_id,
            deposit.c.block_number > block_number,
            deposit.c.status.in_(ON_CHAIN),
        )
    )
    return [KnownDeposit(*row) for row in (await conn.execute(statement)).all()]


async def mark_reverted(
    conn: AsyncConnection, *, deposit_ids: Sequence[str], now: datetime
) -> None:
    for chunk in chunks(deposit_ids):
        await conn.execute(
            update(deposit).where(deposit.c.id.in_(chunk)).values(status=REVERTED, reverted_at=now)
        )
