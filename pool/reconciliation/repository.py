"""SQL for reconciliation: what addrpool recorded and announced, and the reports it keeps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.deposits.ledger_repository import chunks
from pool.kit.tables import (
    address,
    chain_block,
    chain_cursor,
    delivery,
    deposit,
    event,
    reconciliation_report,
)
from pool.vocabulary import (
    COMPLETED,
    CREDITED,
    DELIVERY_CANCELLED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SUCCEEDED,
    DEPOSIT_CONFIRMED,
    DUST,
    ON_CHAIN,
    REVERTED,
    DepositStatus,
)

REPORTS_KEPT = 100


@dataclass(frozen=True, slots=True)
class LedgerDeposit:
    """A deposit as addrpool recorded it, with what reconciliation compares."""

    id: str
    chain_id: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    token_contract: str
    recipient_hex20: str
    amount: int
    currency: str
    decimals: int
    status: DepositStatus
    late: bool
    attributed: bool
    detected_at: datetime
    confirmed_at: datetime | None
    order_id: str | None = None  # an order's transfer (announced by order events)
    # An operator's decision (pool/deposits/resolution.py): attributed | refunded | ignored.
    resolution: str | None = None
    trace_position: str = ""  # a native deposit's place in its transaction (chains.evm.native)


@dataclass(slots=True)
class Announcement:
    """One deposit event and where its deliveries stand."""

    seq: int
    deliveries: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def unacknowledged(self) -> int:
        return self.deliveries - self.succeeded - self.cancelled


@dataclass(slots=True)
class Announced:
    """deposit id → event type → its announcements (a reopened deposit can have two)."""

    by_deposit: dict[str, dict[str, list[Announcement]]] = field(default_factory=dict)

    def of(self, deposit_id: str, event_type: str) -> list[Announcement]:
        return self.by_deposit.get(deposit_id, {}).get(event_type, [])


_LEDGER_COLUMNS = (
    deposit.c.id,
    deposit.c.chain_id,
    deposit.c.tx_hash,
    deposit.c.log_index,
    deposit.c.block_number,
    deposit.c.block_hash,
    deposit.c.token_contract,
    address.c.hex20,
    deposit.c.amount,
    deposit.c.currency,
    deposit.c.decimals,
    deposit.c.status,
    deposit.c.late,
    deposit.c.binding_id.is_not(None),
    deposit.c.detected_at,
    deposit.c.confirmed_at,
    deposit.c.order_id,
    deposit.c.resolution,
    deposit.c.trace_position,
)


def ledger_deposits() -> Any:
    return select(*_LEDGER_COLUMNS).select_from(
        deposit.join(address, address.c.id == deposit.c.address_id)
    )


def _in_chains(statement: Any, chain_ids: Sequence[str] | None) -> Any:
    return statement if chain_ids is None else statement.where(deposit.c.chain_id.in_(chain_ids))


# Attributed, on time, and done with: completed (every receiver acknowledged), reverted or dust.
# Nothing about them can disagree any more without the chain saying so (the chain audit's job).
_SETTLED = and_(
    deposit.c.binding_id.is_not(None),
    deposit.c.late.is_(False),
    deposit.c.status.in_((COMPLETED, REVERTED, DUST)),
)


async def deposits_to_check(
    conn: AsyncConnection, *, since: datetime, chain_ids: Sequence[str] | None
) -> list[LedgerDeposit]:
    """The window's deposits whose records can still disagree (not the settled majority)."""
    statement = ledger_deposits().where(deposit.c.detected_at >= since, ~_SETTLED)
    rows = await conn.execute(_in_chains(statement, chain_ids))
    return [LedgerDeposit(*tuple(row)) for row in rows.all()]


async def count_since(
    conn: AsyncConnection, *, since: datetime, chain_ids: Sequence[str] | None
) -> int:
    statement = select(func.count()).select_from(deposit).where(deposit.c.detected_at >= since)
    return int(await conn.scalar(_in_chains(statement, chain_ids)) or 0)


async def most_recent(
    conn: AsyncConnection, *, chain_id: str, since: datetime, up_to_block: int, limit: int
) -> list[LedgerDeposit]:
    """The chain's most recent recorded deposits at or below a height: what is re-read."""
    statement = (
        ledger_deposits()
        .where(
            deposit.c.chain_id == chain_id,
            deposit.c.block_number <= up_to_block,
            deposit.c.detected_at >= since,
            deposit.c.status.in_(ON_CHAIN),
        )
        .order_by(deposit.c.block_number.desc(), deposit.c.log_index.desc())
        .limit(limit)
    )
    return [LedgerDeposit(*tuple(row)) for row in (await conn.execute(statement)).all()]


async def in_window(
    conn: AsyncConnection, *, deposit_ids: Sequence[str], since: datetime
) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(list(deposit_ids)):
        rows = await conn.execute(
            select(deposit.c.id).where(deposit.c.id.in_(chunk), deposit.c.detected_at >= since)
        )
        found.update(str(i) for i in rows.scalars().all())
    return found


async def confirmed_announcements(
    conn: AsyncConnection, *, deposit_ids: Sequence[str], since: datetime
) -> Announced:
    """The `deposit.confirmed` events of these deposits, each with its deliveries counted by
    outcome. `since` bounds the scan: no such event is older than its deposit's confirmation.
    """
    announced = Announced()
    if not deposit_ids:
        return announced
    outcome = delivery.c.status

    def count(status: str) -> Any:
        return func.sum(case((outcome == status, 1), else_=0))

    deposit_id = event.c.data["depositId"].as_string()
    for chunk in chunks(list(deposit_ids)):
        statement = (
            select(
                event.c.seq,
                deposit_id,
                event.c.type,
                func.count(delivery.c.id),
                count(DELIVERY_SUCCEEDED),
                count(DELIVERY_FAILED),
                count(DELIVERY_CANCELLED),
            )
            .select_from(event.outerjoin(delivery, delivery.c.event_seq == event.c.seq))
            .where(
                event.c.created_at >= since,
                event.c.type == DEPOSIT_CONFIRMED,
                deposit_id.in_(chunk),
            )
            .group_by(event.c.seq)
        )
        for seq, dep, kind, total, succeeded, failed, cancelled in (
            await conn.execute(statement)
        ).all():
            counted = Announcement(
                int(seq), int(total), int(succeeded or 0), int(failed or 0), int(cancelled or 0)
            )
            announced.by_deposit.setdefault(str(dep), {}).setdefault(kind, []).append(counted)
    return announced


async def requeue_failed(
    conn: AsyncConnection,
    *,
    event_seqs: Sequence[int],
    max_requeues: int,
    limit: int,
    now: datetime,
) -> list[str]:
    """Failed deliveries of these events back to pending, each only `max_requeues` times.

    Pending ones are left alone: their next-attempt time may be a worker's lease, and moving
    it would let a second worker send the same delivery at the same time.
    """
    requeued: list[str] = []
    for chunk in chunks(list(event_seqs)):
        room = limit - len(requeued)
        if room <= 0:
            break
        ids = (
            (
                await conn.execute(
                    select(delivery.c.id)
                    .where(
                        delivery.c.event_seq.in_(chunk),
                        delivery.c.status == DELIVERY_FAILED,
                        delivery.c.requeues < max_requeues,
                    )
                    .order_by(delivery.c.id)
                    .limit(room)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            continue
        await conn.execute(
            update(delivery)
            .where(delivery.c.id.in_(ids), delivery.c.status == DELIVERY_FAILED)
            .values(
                status=DELIVERY_PENDING,
                next_attempt_at=now,
                retry_from=now,
                completed_at=None,
                requeues=delivery.c.requeues + 1,
            )
        )
        requeued.extend(str(i) for i in ids)
    return requeued


async def window_heights(conn: AsyncConnection, chain_id: str) -> list[int]:
    rows = await conn.execute(
        select(chain_block.c.number)
        .where(chain_block.c.chain_id == chain_id)
        .order_by(chain_block.c.number)
    )
    return [int(n) for n in rows.scalars().all()]


async def cursor_position(conn: AsyncConnection, chain_id: str) -> tuple[int, int | None] | None:
    """(cursor block, last head seen) of a chain, or None if it was never watched."""
    row = (
        await conn.execute(
            select(chain_cursor.c.block_number, chain_cursor.c.head).where(
                chain_cursor.c.chain_id == chain_id
            )
        )
    ).first()
    return (int(row[0]), None if row[1] is None else int(row[1])) if row is not None else None


async def fill_window(
    conn: AsyncConnection, *, chain_id: str, blocks: Iterable[tuple[int, str, str]]
) -> int:
    """Store re-read canonical headers for heights the window still lacks (a repaired gap);
    how many were stored.

    Insert only: a height the watcher stored since the headers were read is the watcher's, and
    newer (invariant 15 — the window is the leader's; the caller holds the leadership row).
    """
    rows = [{"chain_id": chain_id, "number": n, "hash": h, "parent_hash": p} for n, h, p in blocks]
    if not rows:
        return 0
    stored = set(
        (
            await conn.execute(
                select(chain_block.c.number).where(
                    chain_block.c.chain_id == chain_id,
                    chain_block.c.number.in_([row["number"] for row in rows]),
                )
            )
        )
        .scalars()
        .all()
    )
    missing = [row for row in rows if row["number"] not in stored]
    if missing:
        await conn.execute(insert(chain_block), missing)
    return len(missing)


async def save_report(
    conn: AsyncConnection,
    *,
    started_at: datetime,
    finished_at: datetime,
    since: datetime,
    summary: dict[str, Any],
    items: list[dict[str, Any]],
) -> int:
    result = await conn.execute(
        insert(reconciliation_report)
        .values(
            started_at=started_at,
            finished_at=finished_at,
            since=since,
            summary=summary,
            items=items,
        )
        .returning(reconciliation_report.c.id)
    )
    report_id = int(result.scalar_one())
    await conn.execute(
        delete(reconciliation_report).where(reconciliation_report.c.id <= report_id - REPORTS_KEPT)
    )
    return report_id


async def load_report(conn: AsyncConnection, report_id: int | None = None) -> dict[str, Any] | None:
    """One stored report; the latest when no id is given."""
    statement = select(reconciliation_report).order_by(reconciliation_report.c.id.desc()).limit(1)
    if report_id is not None:
        statement = statement.where(reconciliation_report.c.id == report_id)
    row = (await conn.execute(statement)).first()
    return dict(row._mapping) if row is not None else None


@dataclass(frozen=True, slots=True)
class CreditedDeposit:
    chain_id: str
    currency: str
    token_contract: str
    decimals: int
    amount: int
    block_number: int
    confirmed_at: datetime


async def credited_between(
    conn: AsyncConnection, *, since: datetime, until: datetime, chain_ids: Sequence[str] | None
) -> list[CreditedDeposit]:
    """Confirmed (and completed) deposits by when they were credited: the ledger's side.

    Summed by the caller: SQLite's SUM over TEXT amounts goes through a lossy REAL.
    """
    statement = select(
        deposit.c.chain_id,
        deposit.c.currency,
        deposit.c.token_contract,
        deposit.c.decimals,
        deposit.c.amount,
        deposit.c.block_number,
        deposit.c.confirmed_at,
    ).where(
        deposit.c.status.in_(CREDITED),
        deposit.c.binding_id.is_not(None),
        deposit.c.confirmed_at >= since,
        deposit.c.confirmed_at < until,
    )
    if chain_ids is not None:
        statement = statement.where(deposit.c.chain_id.in_(list(chain_ids)))
    return [CreditedDeposit(*row) for row in (await conn.execute(statement)).all()]
