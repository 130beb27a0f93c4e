"""The deposit ledger: what the watcher records, inside the transaction of its batch.

Each function only writes through the caller's connection; the watcher's batch owns the
transaction (services never commit), so deposits, events, block hashes and the cursor
land together or not at all (invariant 6, docs/design.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts.repository import fire_alert, fire_alerts
from pool.chain_state import repository as chain_state
from pool.deposits import ledger_repository as repo
from pool.deposits.new_rows import (
    NewRow,
    ObservedTransfer,
    deposit_row,
    fresh_payloads,
    unattributed_firings,
)
from pool.deposits.payloads import ShownChain, as_pending, deposit_payload
from pool.deposits.repository import deposits_by_ids
from pool.kit.config_sections import OrderSettings
from pool.orders import lifecycle
from pool.vocabulary import (
    CONFIRMED,
    CONFIRMED_DEPOSIT_REVERTED,
    CREDITED,
    DEPOSIT_CONFIRMED,
    DEPOSIT_PENDING,
    DEPOSIT_REVERTED,
    DUST,
    PENDING,
    REVERTED,
    Protocol,
)
from pool.webhooks.events_repository import insert_events
from pool.webhooks.outbox import new_event_id

# What an order's address cools down for when the caller does not say ([orders] cooldown).
DEFAULT_ORDER_COOLDOWN = OrderSettings().cooldown


@dataclass(slots=True)
class LedgerChanges:
    recorded: int = 0
    reopened: int = 0
    confirmed: int = 0
    reverted: int = 0
    events: int = 0

    def __iadd__(self, other: LedgerChanges) -> LedgerChanges:
        self.recorded += other.recorded
        self.reopened += other.reopened
        self.confirmed += other.confirmed
        self.reverted += other.reverted
        self.events += other.events
        return self


async def record_transfers(
    conn: AsyncConnection,
    *,
    chain_id: str,
    protocol: Protocol,
    transfers: Sequence[ObservedTransfer],
    now: datetime,
    confirmed_through: int | None = None,
    order_cooldown: timedelta = DEFAULT_ORDER_COOLDOWN,
) -> LedgerChanges:
    """Record new deposits once (Invariant 5) and re-open reverted ones seen again (Invariant 7).

    `confirmed_through`: the caller has just verified the blocks up to this height canonical
    at the required depth (a catch-up scan checks their headers). New deposits there are
    recorded confirmed at once, announced pending then confirmed in this same transaction,
    rather than left for the next confirmation pass to read back and update.

    A transfer to an order's address is the order's (pool/orders/linking.py): no binding, no
    `deposit.*` event, no unattributed alert; born confirmed, it may complete its order here.
    """
    changes = LedgerChanges()
    if not transfers:
        return changes
    keys = {t.key for t in transfers}
    known = await repo.known_deposits(conn, chain_id=chain_id, keys=keys)
    fresh = [t for t in transfers if t.key not in known]
    deepest = -1 if confirmed_through is None else confirmed_through
    new = await _insert_new(
        conn, chain_id=chain_id, protocol=protocol, fresh=fresh, now=now, deepest=deepest
    )
    reopened = await _reopen_reverted(conn, transfers, known)
    changes.recorded, changes.reopened = len(new.inserted), len(reopened)
    changes.confirmed = sum(1 for i in new.inserted if i.row["status"] == CONFIRMED)
    pending = new.pending + await _stored_payloads(conn, reopened)
    # Pending before confirmed: deliveries go out in the order of the events (their seq).
    announcements = [(DEPOSIT_PENDING, p) for p in pending]
    announcements += [(DEPOSIT_CONFIRMED, p) for p in new.confirmed]
    changes.events = await _insert_announcements(conn, announcements, now)
    ordered = [
        i.row["id"]
        for i in new.inserted
        if i.row["order_id"] is not None and i.row["status"] == CONFIRMED
    ]
    if ordered:
        changes.events += await lifecycle.after_confirmation(
            conn, deposit_ids=ordered, now=now, cooldown=order_cooldown
        )
    return changes


@dataclass(frozen=True, slots=True)
class _NewDeposits:
    inserted: list[NewRow]  # those this transaction wrote
    pending: list[dict[str, Any]]  # `deposit.pending` payloads of the announced ones
    confirmed: list[dict[str, Any]]  # `deposit.confirmed` payloads of those born confirmed


async def _insert_new(
    conn: AsyncConnection,
    *,
    chain_id: str,
    protocol: Protocol,
    fresh: Sequence[ObservedTransfer],
    now: datetime,
    deepest: int,
) -> _NewDeposits:
    """Insert the rows of pool addresses (others are not, or no longer, in the pool), those
    at or below `deepest` confirmed; alert on the unattributed ones. Returns what was
    inserted (a racing rescan may have won a row) and the payloads to announce it with."""
    found = await repo.recipients(conn, protocol=protocol, hex20s={t.to_hex20 for t in fresh})
    candidates = [
        NewRow(deposit_row(chain_id, t, found[t.to_hex20], now, deepest), found[t.to_hex20])
        for t in fresh
        if t.to_hex20 in found
    ]
    shown = await _shown_chain(conn, chain_id, protocol, candidates)
    # What receivers and operators will hear of the rows is built while the database inserts
    # them, for every candidate, and kept for those written: a catch-up range's payloads
    # and alerts are Python work that otherwise waited for the insert (docs/performance.md).
    written, (payloads, firings) = await repo.insert_deposits(
        conn,
        [c.row for c in candidates],
        meanwhile=lambda: (
            fresh_payloads(candidates, shown),
            unattributed_firings(chain_id, candidates),
        ),
    )
    inserted = [c for c in candidates if c.row["id"] in written]
    kept = [firings[i.row["id"]] for i in inserted if i.row["id"] in firings]
    if kept:
        await fire_alerts(conn, firings=kept, now=now)
    current = [payloads[i.row["id"]] for i in inserted if i.row["id"] in payloads]
    # A row born confirmed is announced pending too, as if confirmed the moment after.
    pending = [as_pending(p) if p["status"] == CONFIRMED else p for p in current]
    confirmed = [p for p in current if p["status"] == CONFIRMED]
    return _NewDeposits(inserted, pending, confirmed)


async def _reopen_reverted(
    conn: AsyncConnection,
    transfers: Sequence[ObservedTransfer],
    known: Mapping[repo.DepositKey, repo.KnownDeposit],
) -> list[str]:
    """Re-open reverted deposits seen again; the ids of those receivers must hear about."""
    announce: list[str] = []
    relinked: list[str] = []
    for transfer in transfers:
        previous = known.get(transfer.key)
        if previous is None or previous.status != REVERTED:
            continue
        reopened = await repo.reopen_deposit(
            conn,
            deposit_id=previous.id,
            status=DUST if transfer.is_dust else PENDING,
            block_number=transfer.block_number,
            block_hash=transfer.block_hash,
            block_time=transfer.block_time,
        )
        if reopened and previous.binding_id is not None and not transfer.is_dust:
            announce.append(previous.id)
        if reopened and previous.binding_id is None:
            relinked.append(previous.id)
    if relinked:  # an order's transfer in another block: its role follows the new block time
        await lifecycle.relink(conn, deposit_ids=relinked)
    return announce


async def _shown_chain(
    conn: AsyncConnection, chain_id: str, protocol: Protocol, candidates: Sequence[NewRow]
) -> ShownChain | None:
    """The head and depth payloads show; None when no candidate is announced at all."""
    if not any(c.announced for c in candidates):
        return None
    head, required = await chain_state.head_and_confirmations(conn, chain_id)
    return ShownChain(protocol, head, required)


async def confirm_deposits(
    conn: AsyncConnection,
    *,
    verified: Mapping[str, str],
    now: datetime,
    order_cooldown: timedelta = DEFAULT_ORDER_COOLDOWN,
) -> LedgerChanges:
    """Confirm pending deposits whose block hash was just re-verified canonical.

    `verified` maps deposit id → the canonical hash at its height; a row whose stored hash
    differs is left alone (the watcher treats that as a reorg).
    """
    # The caller read each row's hash and compared it with the node's moments ago; only this
    # chain's watcher changes a pending row's block, so one UPDATE per chunk is enough.
    announce = await repo.mark_all_confirmed(conn, deposit_ids=list(verified), now=now)
    events = await _announce(conn, DEPOSIT_CONFIRMED, announce, now, attributed_only=True)
    # Orders' transfers among them: completion, late and mismatch notices (same transaction).
    events += await lifecycle.after_confirmation(
        conn, deposit_ids=announce, now=now, cooldown=order_cooldown
    )
    return LedgerChanges(confirmed=len(announce), events=events)


async def revert_above(
    conn: AsyncConnection, *, chain_id: str, block_number: int, now: datetime
) -> LedgerChanges:
    """Every recorded deposit above `block_number` left the canonical chain (Invariant 7)."""
    orphaned = await repo.live_above(conn, chain_id=chain_id, block_number=block_number)
    return await revert_deposits(conn, orphaned=orphaned, now=now)


async def revert_deposits(
    conn: AsyncConnection, *, orphaned: Sequence[repo.KnownDeposit], now: datetime
) -> LedgerChanges:
    """These recorded deposits' blocks are no longer canonical."""
    await repo.mark_reverted(conn, deposit_ids=[d.id for d in orphaned], now=now)
    for lost in orphaned:
        if lost.status in CREDITED:
            await _alert_confirmed_reverted(conn, lost, now)
    announced = [d.id for d in orphaned if d.announced]
    events = await _announce(conn, DEPOSIT_REVERTED, announced, now)
    credited = [d.id for d in orphaned if d.status in CREDITED and d.binding_id is None]
    if credited:  # a completed order's payment among them: `order.reverted` and an alert
        events += await lifecycle.after_revert(conn, credited_ids=credited, now=now)
    return LedgerChanges(reverted=len(orphaned), events=events)


async def _alert_confirmed_reverted(
    conn: AsyncConnection, lost: repo.KnownDeposit, now: datetime
) -> None:
    await fire_alert(
        conn,
        kind=CONFIRMED_DEPOSIT_REVERTED,
        subject=f"{CONFIRMED_DEPOSIT_REVERTED}:{lost.id}",
        severity="critical",
        value=lost.status,
        details={
            "depositId": lost.id,
            "chainId": lost.chain_id,
            "txHash": lost.tx_hash,
            "blockNumber": lost.block_number,
            "blockHash": lost.block_hash,
        },
        now=now,
    )


async def _announce(
    conn: AsyncConnection,
    event_type: str,
    ids: Sequence[str],
    now: datetime,
    *,
    attributed_only: bool = False,
) -> int:
    """One outbox event per deposit, carrying the deposit object as it now stands."""
    payloads = await _stored_payloads(conn, ids, attributed_only=attributed_only)
    return await _insert_announcements(conn, [(event_type, p) for p in payloads], now)


async def _stored_payloads(
    conn: AsyncConnection, ids: Sequence[str], *, attributed_only: bool = False
) -> list[dict[str, Any]]:
    rows = await deposits_by_ids(conn, ids) if ids else {}
    return [
        deposit_payload(rows[deposit_id_])
        for deposit_id_ in ids
        if not (attributed_only and rows[deposit_id_].deposit_reference is None)
    ]


async def _insert_announcements(
    conn: AsyncConnection, announcements: Sequence[tuple[str, dict[str, Any]]], now: datetime
) -> int:
    """(event type, payload) pairs as outbox events, ids ascending in the order given."""
    events = [(new_event_id(), event_type, payload) for event_type, payload in announcements]
    if events:
        await insert_events(conn, events=events, now=now)
    return len(events)
