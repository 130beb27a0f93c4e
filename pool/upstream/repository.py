"""SQL for upstream mode: PayIn's stored events and the deposits they are matched with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.deposits.repository import DepositFilters, DepositRow, deposits_query
from pool.kit.tables import address, deposit, payment_order, upstream_event
from pool.reconciliation.repository import LedgerDeposit, ledger_deposits
from pool.vocabulary import ALLOCATED, ATTRIBUTED, CREDITED, IMPORTING, PENDING, Protocol

# An upstream event's status as it comes in; the check (chains/checks/upstream_check.py) moves
# a received one on.
REJECTED = "rejected"
RECEIVED = "received"
CHECK_BATCH = 100
ITEMS_LIMIT = 10_000  # a report lists at most this many unannounced deposits
# A checked event's statuses that are PayIn's claims not borne out (chains/checks/upstream_check.py
# for deposits, pool/upstream/order_check.py for orders).
UNRESOLVED = (
    "mismatched",
    "not_on_chain",
    "not_seen",
    "missed",
    "order_unknown",
    "order_unpaid",
    "order_paid",
)


async def accepted_event_exists(conn: AsyncConnection, event_id: str | None) -> bool:
    """Whether an event with this id was accepted before (a redelivery)."""
    known = await conn.scalar(
        select(upstream_event.c.id).where(
            upstream_event.c.event_id == event_id, upstream_event.c.status != REJECTED
        )
    )
    return known is not None


async def insert_event(
    conn: AsyncConnection,
    *,
    event_id: str | None,
    event_type: str | None,
    status: str,
    reason: str | None,
    payload: dict[str, Any] | None,
    received_at: datetime,
) -> None:
    await conn.execute(
        insert(upstream_event).values(
            event_id=event_id,
            type=event_type,
            status=status,
            reason=reason,
            payload=payload,
            received_at=received_at,
        )
    )


async def events_to_check(
    conn: AsyncConnection, *, statuses: Sequence[str]
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(upstream_event)
        .where(upstream_event.c.status.in_(list(statuses)))
        .order_by(upstream_event.c.id)
        .limit(CHECK_BATCH)
    )
    return [dict(r._mapping) for r in rows.all()]


async def record_check(
    conn: AsyncConnection,
    *,
    row_id: int,
    status: str,
    reason: str | None,
    deposit_id: str | None,
    now: datetime,
) -> None:
    await conn.execute(
        update(upstream_event)
        .where(upstream_event.c.id == row_id)
        .values(status=status, reason=reason, deposit_id=deposit_id, checked_at=now)
    )


async def deposits_of_transaction(
    conn: AsyncConnection, *, chain_id: str, tx_hash: str
) -> list[DepositRow]:
    statement = deposits_query(DepositFilters(chain_id=chain_id)).where(
        deposit.c.tx_hash == tx_hash
    )
    return [DepositRow(*row) for row in (await conn.execute(statement)).all()]


async def unresolved_events(conn: AsyncConnection, *, since: datetime) -> list[dict[str, Any]]:
    """PayIn's claims that did not check out: for the reconciliation report."""
    rows = await conn.execute(
        select(upstream_event)
        .where(
            upstream_event.c.status.in_(UNRESOLVED),
            upstream_event.c.received_at >= since,
        )
        .order_by(upstream_event.c.id)
    )
    return [dict(r._mapping) for r in rows.all()]


async def credited_unannounced(
    conn: AsyncConnection,
    *,
    since: datetime,
    confirmed_before: datetime,
    chain_ids: Sequence[str],
) -> list[LedgerDeposit]:
    """Our credited deposits of the window that no PayIn event was matched with in time."""
    matched = select(upstream_event.c.deposit_id).where(
        upstream_event.c.status == "matched", upstream_event.c.deposit_id.is_not(None)
    )
    statement = (
        ledger_deposits()
        .where(
            deposit.c.detected_at >= since,
            deposit.c.binding_id.is_not(None),
            deposit.c.status.in_(CREDITED),
            deposit.c.confirmed_at < confirmed_before,
            deposit.c.chain_id.in_(list(chain_ids)),
            deposit.c.id.not_in(matched),
            # Attributed here by an operator: PayIn saw nobody's deposit and announces none.
            or_(deposit.c.resolution.is_(None), deposit.c.resolution != ATTRIBUTED),
        )
        .limit(ITEMS_LIMIT)
    )
    return [LedgerDeposit(*tuple(row)) for row in (await conn.execute(statement)).all()]


@dataclass(frozen=True, slots=True)
class Holding:
    """A pool address, its status, and the pending order that holds it (if any)."""

    address_id: int
    status: str
    order_id: str | None


def _holding(where: Any) -> Any:
    holder = (
        select(payment_order.c.id)
        .where(payment_order.c.address_id == address.c.id, payment_order.c.status == PENDING)
        .limit(1)
        .scalar_subquery()
    )
    return select(address.c.id, address.c.status, holder).where(
        where, address.c.status != IMPORTING
    )


async def address_holding(
    conn: AsyncConnection, *, protocol: Protocol, text: str
) -> Holding | None:
    """Upstream mode: what our pool says of an address PayIn handed out (None: not ours)."""
    statement = _holding(and_(address.c.protocol == protocol, address.c.address == text))
    row = (await conn.execute(statement)).first()
    return None if row is None else Holding(*row)


async def lock_address(conn: AsyncConnection, *, address_id: int) -> Holding | None:
    """The same, the address row locked (PostgreSQL) until the transaction ends."""
    locked = await conn.scalar(
        select(address.c.id).where(address.c.id == address_id).with_for_update()
    )
    if locked is None:
        return None
    row = (await conn.execute(_holding(address.c.id == address_id))).first()
    return None if row is None else Holding(*row)


async def mark_allocated(conn: AsyncConnection, *, address_id: int) -> None:
    """Upstream mode: PayIn gave this address to an order; held as a local order holds it (no
    reference to reclaim it, no cooldown: invariant 13)."""
    await conn.execute(
        update(address)
        .where(address.c.id == address_id)
        .values(status=ALLOCATED, last_reference=None, cooldown_until=None)
    )


async def order_id_of_reference(conn: AsyncConnection, reference: str) -> str | None:
    return await conn.scalar(
        select(payment_order.c.id).where(payment_order.c.order_reference == reference)
    )
