"""SQL for upstream mode: PayIn's stored events and the deposits they are matched with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.deposits.repository import DepositFilters, DepositRow, deposits_query
from pool.kit.tables import deposit, upstream_event
from pool.reconciliation.repository import LedgerDeposit, ledger_deposits
from pool.vocabulary import CREDITED

# An upstream event's status as it comes in; the check (chains/checks/upstream_check.py) moves
# a received one on.
REJECTED = "rejected"
RECEIVED = "received"
CHECK_BATCH = 100
ITEMS_LIMIT = 10_000  # a report lists at most this many unannounced deposits


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
            upstream_event.c.status.in_(("mismatched", "not_on_chain", "not_seen", "missed")),
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
        )
        .limit(ITEMS_LIMIT)
    )
    return [LedgerDeposit(*tuple(row)) for row in (await conn.execute(statement)).all()]
