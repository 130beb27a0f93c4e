"""What a newly seen transfer becomes: its deposit row, the payload receivers hear of it, and the
alert it raises when nobody is credited with it. Pure: the ledger (pool.deposits.ledger) writes
them in the watcher's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pool.alerts.repository import Firing
from pool.deposits.ledger_repository import DepositKey, Recipient
from pool.deposits.payloads import ShownChain, new_deposit_payload
from pool.orders.linking import BINDING, OrderLink, owner_of
from pool.vocabulary import CONFIRMED, DUST, PENDING, UNATTRIBUTED_DEPOSIT


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
    # The block's timestamp: it decides whether a transfer counts for an order. None only
    # where no order can be involved (tests of the ledger alone); detection time stands in.
    block_time: datetime | None = None
    # A native transfer's place in its transaction (chains.evm.native): "tx", "tx.0.1"; its
    # log_index is -1. A token transfer's is "".
    trace_position: str = ""

    @property
    def is_dust(self) -> bool:
        return self.amount < self.min_amount

    @property
    def key(self) -> DepositKey:
        return (self.tx_hash, self.log_index, self.trace_position)


def deposit_id(chain_id: str, tx_hash: str, log_index: int, trace_position: str = "") -> str:
    """Derived from the natural key, so a re-recorded deposit can never get a second id.

    A native deposit's position ("tx…") stands where a token's log index does: the two
    can never be mistaken for each other, and every token deposit keeps the id it had."""
    where = trace_position or str(log_index)
    digest = hashlib.sha256(f"{chain_id}:{tx_hash}:{where}".encode()).hexdigest()
    return "dep_" + digest[:24]


@dataclass(frozen=True, slots=True)
class NewRow:
    """A deposit row this transaction inserts (unless a racing rescan did), and the address
    it reached."""

    row: dict[str, Any]
    recipient: Recipient

    @property
    def announced(self) -> bool:
        """Receivers hear of attributed, non-dust deposits only (Invariants 11, 12)."""
        return self.row["binding_id"] is not None and self.row["status"] != DUST


def deposit_row(
    chain_id: str,
    transfer: ObservedTransfer,
    recipient: Recipient,
    now: datetime,
    deepest: int,
) -> dict[str, Any]:
    block_time = transfer.block_time or now
    owner = owner_of(
        recipient.order,
        bound_at=recipient.bound_at,
        chain_id=chain_id,
        token_contract=transfer.token_contract,
        block_time=block_time,
    )
    order = owner if isinstance(owner, OrderLink) else None
    # Invariant 4: an archived address is still watched, but nobody is credited through it.
    # The latest use wins: an order's transfer (or one after its cooldown) is no binding's.
    binding_id = None if recipient.archived or owner != BINDING else recipient.binding_id
    status = CONFIRMED if transfer.block_number <= deepest else PENDING
    return {
        "id": deposit_id(chain_id, transfer.tx_hash, transfer.log_index, transfer.trace_position),
        "chain_id": chain_id,
        "tx_hash": transfer.tx_hash,
        "log_index": transfer.log_index,
        "trace_position": transfer.trace_position,
        "block_number": transfer.block_number,
        "block_hash": transfer.block_hash,
        "from_address": transfer.from_address,
        "address_id": recipient.address_id,
        "binding_id": binding_id,
        "token_contract": transfer.token_contract,
        "currency": transfer.currency,
        "amount": transfer.amount,
        "decimals": transfer.decimals,
        "status": DUST if transfer.is_dust else status,
        # Cooling down (or recycled since): the last reference still owns what its user sends.
        "late": binding_id is not None and not recipient.binding_active,
        "detected_at": now,
        "confirmed_at": now if status == CONFIRMED and not transfer.is_dust else None,
        "order_id": None if order is None else order.order_id,
        "order_role": None if order is None else order.role,
        "block_time": transfer.block_time,
    }


def unattributed_firings(chain_id: str, candidates: Sequence[NewRow]) -> dict[str, Firing]:
    """Deposit id → the alert its row raises when nobody is credited with it."""
    # Dust to a spare address is poisoning spam: noise, not a discrepancy.
    return {
        row["id"]: Firing(
            kind=UNATTRIBUTED_DEPOSIT,
            subject=f"{UNATTRIBUTED_DEPOSIT}:{row['id']}",
            severity="warning",
            value=str(row["amount"]),
            details={
                "depositId": row["id"],
                "chainId": chain_id,
                "txHash": row["tx_hash"],
                "logIndex": row["log_index"],
                **({"tracePosition": row["trace_position"]} if row["trace_position"] else {}),
                "currency": row["currency"],
            },
        )
        for row in (c.row for c in candidates)
        if row["binding_id"] is None and row["order_id"] is None and row["status"] != DUST
    }


def fresh_payloads(
    candidates: Sequence[NewRow], shown: ShownChain | None
) -> dict[str, dict[str, Any]]:
    """Deposit id → the payload of each announced candidate, built from the row rather than
    read back."""
    if shown is None:
        return {}
    return {
        c.row["id"]: new_deposit_payload(c.row, c.recipient, shown)
        for c in candidates
        if c.announced
    }
