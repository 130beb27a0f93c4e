"""The deposit ledger: what the watcher records, inside the transaction of its batch.

Each function only writes through the caller's connection; the watcher's batch owns the
transaction (STYLE.md, Commit at the edge), so deposits, events, block hashes and the cursor
land together or not at all (Invariant 6).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.domain import Protocol
from pool.outbox import new_event_id
from pool.payloads import deposit_payload
from pool.repository import ledger as repo
from pool.repository.alerts import fire_alert
from pool.repository.deposits import deposits_by_ids
from pool.repository.events import insert_events

DEPOSIT_PENDING = "deposit.pending"
DEPOSIT_CONFIRMED = "deposit.confirmed"
DEPOSIT_REVERTED = "deposit.reverted"


@dataclass(frozen=True, slots=True)
class ObservedTransfer:
    """A token Transfer to a pool address, as read from a canonical block."""

    tx_hash: str  # as shown: Tron ids carry no 0x
    log_index: int
    block_number: int
    block_hash: str
    from_address: str  # canonical text
    to_hex20: str
    token_contract: str  # canonical text
    currency: str
    decimals: int
    amount: int
    min_amount: int

    @property
    def is_dust(self) -> bool:
        return self.amount < self.min_amount


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


def deposit_id(chain_id: str, tx_hash: str, log_index: int) -> str:
    """Derived from the natural key, so a re-recorded deposit can never get a second id."""
    digest = hashlib.sha256(f"{chain_id}:{tx_hash}:{log_index}".encode()).hexdigest()
    return "dep_" + digest[:24]


async def record_transfers(
    conn: AsyncConnection,
    *,
    chain_id: str,
    protocol: Protocol,
    transfers: Sequence[ObservedTransfer],
    now: datetime,
) -> LedgerChanges:
    """Record new deposits once (Invariant 5) and re-open reverted ones seen again (Invariant 7)."""
    changes = LedgerChanges()
    if not transfers:
        return changes
    keys = {(t.tx_hash, t.log_index) for t in transfers}
    known = await repo.known_deposits(conn, chain_id=chain_id, keys=keys)
    fresh = [t for t in transfers if (t.tx_hash, t.log_index) not in known]
    changes.recorded, announce = await _insert_new(
        conn, chain_id=chain_id, protocol=protocol, fresh=fresh, now=now
    )
    for transfer in transfers:
        previous = known.get((transfer.tx_hash, transfer.log_index))
        if previous is not None and previous.status == "reverted":
            reopened = await repo.reopen_deposit(
                conn,
                deposit_id=previous.id,
                status="dust" if transfer.is_dust else "pending",
                block_number=transfer.block_number,
                block_hash=transfer.block_hash,
            )
            if reopened:
                changes.reopened += 1
                if previous.binding_id is not None and not transfer.is_dust:
                    announce.append(previous.id)
    changes.events = await _announce(conn, DEPOSIT_PENDING, announce, now)
    return changes


async def _insert_new(
    conn: AsyncConnection,
    *,
    chain_id: str,
    protocol: Protocol,
    fresh: Sequence[ObservedTransfer],
    now: datetime,
) -> tuple[int, list[str]]:
    """Insert; returns how many, and the ids of those receivers must hear about."""
    found = await repo.recipients(conn, protocol=protocol, hex20s={t.to_hex20 for t in fresh})
    rows: list[dict[str, Any]] = []
    announce: list[str] = []
    for transfer in fresh:
        recipient = found.get(transfer.to_hex20)
        if recipient is None:
            continue  # not (or no longer) a pool address of this protocol
        row = _deposit_row(chain_id, transfer, recipient, now)
        rows.append(row)
        if row["binding_id"] is None:
            await _alert_unattributed(conn, chain_id, row, now)
        elif row["status"] == "pending":
            announce.append(row["id"])
    await repo.insert_deposits(conn, rows)
    return len(rows), announce


def _deposit_row(
    chain_id: str, transfer: ObservedTransfer, recipient: repo.Recipient, now: datetime
) -> dict[str, Any]:
    # Invariant 4: an archived address is still watched, but nobody is credited through it.
    binding_id = None if recipient.archived else recipient.binding_id
    return {
        "id": deposit_id(chain_id, transfer.tx_hash, transfer.log_index),
        "chain_id": chain_id,
        "tx_hash": transfer.tx_hash,
        "log_index": transfer.log_index,
        "block_number": transfer.block_number,
        "block_hash": transfer.block_hash,
        "from_address": transfer.from_address,
        "address_id": recipient.address_id,
        "binding_id": binding_id,
        "token_contract": transfer.token_contract,
        "currency": transfer.currency,
        "amount": transfer.amount,
        "decimals": transfer.decimals,
        "status": "dust" if transfer.is_dust else "pending",
        # Cooling down (or recycled since): the last reference still owns what its user sends.
        "late": binding_id is not None and not recipient.binding_active,
        "detected_at": now,
    }


async def _alert_unattributed(
    conn: AsyncConnection, chain_id: str, row: dict[str, Any], now: datetime
) -> None:
    if row["status"] == "dust":
        return  # poisoning spam to a spare address is noise, not a discrepancy
    await fire_alert(
        conn,
        kind="unattributed_deposit",
        subject=f"unattributed_deposit:{row['id']}",
        severity="warning",
        value=str(row["amount"]),
        details={
            "depositId": row["id"],
            "chainId": chain_id,
            "txHash": row["tx_hash"],
            "logIndex": row["log_index"],
            "currency": row["currency"],
        },
        now=now,
    )


async def confirm_deposits(
    conn: AsyncConnection, *, verified: Mapping[str, str], now: datetime
) -> LedgerChanges:
    """Confirm pending deposits whose block hash was just re-verified canonical.

    `verified` maps deposit id → the canonical hash at its height; a row whose stored hash
    differs is left alone (the watcher treats that as a reorg).
    """
    # The caller read each row's hash and compared it with the node's moments ago; only this
    # chain's watcher changes a pending row's block, so one UPDATE per chunk is enough.
    announce = await repo.mark_all_confirmed(conn, deposit_ids=list(verified), now=now)
    events = await _announce(conn, DEPOSIT_CONFIRMED, announce, now, attributed_only=True)
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
        if lost.status in ("confirmed", "completed"):
            await _alert_confirmed_reverted(conn, lost, now)
    announced = [d.id for d in orphaned if d.announced]
    events = await _announce(conn, DEPOSIT_REVERTED, announced, now)
    return LedgerChanges(reverted=len(orphaned), events=events)


async def _alert_confirmed_reverted(
    conn: AsyncConnection, lost: repo.KnownDeposit, now: datetime
) -> None:
    await fire_alert(
        conn,
        kind="confirmed_deposit_reverted",
        subject=f"confirmed_deposit_reverted:{lost.id}",
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
    rows = await deposits_by_ids(conn, ids)
    events = [
        (new_event_id(), event_type, deposit_payload(rows[deposit_id_]))
        for deposit_id_ in ids
        if not (attributed_only and rows[deposit_id_].deposit_reference is None)
    ]
    await insert_events(conn, events=events, now=now)
    return len(events)
