"""docs/api.md's deposit object: what `GET /deposits` shows and what `deposit.*` events carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from pool.addresses.stats import PoolSummary
from pool.deposits.ledger_repository import Recipient
from pool.deposits.repository import DepositRow
from pool.kit.amounts import format_units
from pool.kit.clock import isoformat_z
from pool.vocabulary import ON_CHAIN, PENDING, Protocol

# A batch of payloads shares one or two moments (its transaction's `now`): format each once.
_isoformat_z = lru_cache(maxsize=64)(isoformat_z)


def _iso(moment: datetime | None) -> str | None:
    return _isoformat_z(moment) if moment is not None else None


def confirmations(row: DepositRow) -> int:
    """head − block + 1 (docs/api.md); a reverted deposit has none."""
    if row.chain_head is None or row.status not in ON_CHAIN:
        return 0
    return max(0, row.chain_head - row.block_number + 1)


def deposit_payload(row: DepositRow) -> dict[str, Any]:
    return {
        "depositId": row.id,
        "depositReference": row.deposit_reference,
        "address": row.address,
        "protocol": row.protocol,
        "chainId": row.chain_id,
        "currency": row.currency,
        "amount": format_units(row.amount, row.decimals),
        "txHash": row.tx_hash,
        # A native deposit has no log; its place is its trace position (docs/api.md).
        "logIndex": None if row.trace_position else row.log_index,
        "tracePosition": row.trace_position or None,
        "blockNumber": row.block_number,
        "from": row.from_address,
        "confirmations": confirmations(row),
        "requiredConfirmations": row.required_confirmations,
        "status": row.status,
        "late": row.late,
        "detectedAt": _isoformat_z(row.detected_at),
        "confirmedAt": _iso(row.confirmed_at),
        "completedAt": _iso(row.completed_at),
        "resolution": resolution_payload(row),
    }


def resolution_payload(row: DepositRow) -> dict[str, Any] | None:
    """An operator's decision on a deposit nobody was credited with (docs/api.md, Deposits)."""
    if row.resolution is None:
        return None
    return {
        "outcome": row.resolution,
        "note": row.resolution_note,
        "resolvedBy": row.resolved_by,
        "resolvedAt": _iso(row.resolved_at),
    }


def alert_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """An alert record as `GET /alerts`, the CLI and the alert hooks show it."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "subject": row["subject"],
        "severity": row["severity"],
        "state": row["state"],
        "value": row["value"],
        "details": row["details"],
        "firstFiredAt": isoformat_z(row["first_fired_at"]),
        "lastFiredAt": isoformat_z(row["last_fired_at"]),
        "resolvedAt": _iso(row["resolved_at"]),
        # An operator's actions (docs/operations.md, Alerts).
        "acknowledgedAt": _iso(row["acknowledged_at"]),
        "acknowledgedBy": row["acknowledged_by"],
        "silencedUntil": _iso(row["silenced_until"]),
        "silencedBy": row["silenced_by"],
    }


def pool_summary_payload(summary: PoolSummary) -> dict[str, Any]:
    """A protocol's pool as `GET /address-pool/summary` and `addrpool pool stats --json` show it."""
    return {
        "total": summary.total,
        "available": summary.available,
        "bound": summary.bound,
        "allocated": summary.allocated,
        "coolingDown": summary.cooling_down,
        "archived": summary.archived,
        "threshold": summary.threshold,
        "belowThreshold": summary.below_threshold,
        "projectedExhaustionAt": _iso(summary.projected_exhaustion_at),
        "inUse": summary.in_use,
    }


@dataclass(frozen=True, slots=True)
class ShownChain:
    """What a payload shows of its chain: the protocol, the head and the required depth."""

    protocol: Protocol
    head: int | None
    required_confirmations: int | None


def new_deposit_payload(
    row: Mapping[str, Any], recipient: Recipient, chain: ShownChain
) -> dict[str, Any]:
    """The payload of a deposit row this transaction inserted, without reading it back."""
    attributed = row["binding_id"] is not None  # an archived address credits nobody
    return deposit_payload(
        DepositRow(
            id=row["id"],
            deposit_reference=recipient.deposit_reference if attributed else None,
            address=recipient.address,
            protocol=chain.protocol,
            chain_id=row["chain_id"],
            currency=row["currency"],
            amount=row["amount"],
            decimals=row["decimals"],
            tx_hash=row["tx_hash"],
            log_index=row["log_index"],
            block_number=row["block_number"],
            from_address=row["from_address"],
            status=row["status"],
            late=row["late"],
            detected_at=row["detected_at"],
            confirmed_at=row["confirmed_at"],
            completed_at=None,
            chain_head=chain.head,
            required_confirmations=chain.required_confirmations,
            trace_position=row["trace_position"],
        )
    )


def as_pending(confirmed: Mapping[str, Any]) -> dict[str, Any]:
    """A deposit payload as it stood before its confirmation: for a row recorded confirmed at
    once, whose `deposit.pending` goes out with its `deposit.confirmed`. The confirmations
    shown are the same: both statuses count from the same head."""
    return {**confirmed, "status": PENDING, "confirmedAt": None}
