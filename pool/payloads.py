"""The deposit object of API.md: what `GET /deposits` shows and what `deposit.*` events carry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pool.amounts import format_units
from pool.clock import isoformat_z
from pool.repository.deposits import DepositRow

# Statuses whose block is on the canonical chain as far as we know.
_ON_CHAIN = ("pending", "confirmed", "completed", "dust")


def _iso(moment: datetime | None) -> str | None:
    return isoformat_z(moment) if moment is not None else None


def confirmations(row: DepositRow) -> int:
    """head − block + 1 (API.md); a reverted deposit has none."""
    if row.chain_head is None or row.status not in _ON_CHAIN:
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
        "logIndex": row.log_index,
        "blockNumber": row.block_number,
        "from": row.from_address,
        "confirmations": confirmations(row),
        "requiredConfirmations": row.required_confirmations,
        "status": row.status,
        "late": row.late,
        "detectedAt": isoformat_z(row.detected_at),
        "confirmedAt": _iso(row.confirmed_at),
        "completedAt": _iso(row.completed_at),
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
    }
