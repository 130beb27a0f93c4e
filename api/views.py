"""Domain values → the camelCase JSON objects of docs/api.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pool.addresses.importer import ImportReport
from pool.addresses.repository import AddressRow
from pool.bindings.records import Binding, Unbound
from pool.bindings.references import ReferenceTotals, ReferenceView
from pool.deposits.payloads import deposit_payload
from pool.deposits.repository import DepositRow
from pool.kit.clock import isoformat_z, isoformat_z_or_none
from pool.vocabulary import AVAILABLE, COOLING_DOWN


def binding_view(binding: Binding, monitored_chains: list[str]) -> dict[str, Any]:
    return {
        "depositReference": binding.deposit_reference,
        "address": binding.address,
        "protocol": binding.protocol,
        "monitoredChains": monitored_chains,
        "createdAt": isoformat_z(binding.bound_at),
        "metadata": binding.metadata,
    }


def unbound_view(unbound: Unbound) -> dict[str, Any]:
    return {
        "protocol": unbound.protocol,
        "address": unbound.address,
        "cooldownUntil": isoformat_z(unbound.cooldown_until),
    }


def history_view(binding: Binding) -> dict[str, Any]:
    return {
        "address": binding.address,
        "protocol": binding.protocol,
        "boundAt": isoformat_z(binding.bound_at),
        "unboundAt": isoformat_z_or_none(binding.unbound_at),
        "cooldownUntil": isoformat_z_or_none(binding.cooldown_until),
    }


def reference_summary_view(binding: Binding, totals: ReferenceTotals) -> dict[str, Any]:
    return {
        "depositReference": binding.deposit_reference,
        "protocol": binding.protocol,
        "address": binding.address,
        "boundAt": isoformat_z(binding.bound_at),
        "totalDeposits": totals.count,
        "totalAmount": totals.total_amount,
    }


def reference_view(view: ReferenceView) -> dict[str, Any]:
    return {
        **reference_summary_view(view.binding, view.totals),
        "totals": view.totals.by_currency,
        "metadata": view.binding.metadata,
        "bindings": [history_view(b) for b in view.history],
    }


def deposit_view(row: DepositRow) -> dict[str, Any]:
    return deposit_payload(row)


def address_view(row: AddressRow, *, now: datetime) -> dict[str, Any]:
    status = row.status
    if status == AVAILABLE and row.cooldown_until is not None and row.cooldown_until > now:
        status = COOLING_DOWN
    return {
        "address": row.text,
        "protocol": row.protocol,
        "status": status,
        "derivationIndex": row.derivation_index,
        "depositReference": row.deposit_reference,
        "boundAt": isoformat_z_or_none(row.bound_at),
        "cooldownUntil": isoformat_z_or_none(row.cooldown_until),
        "createdAt": isoformat_z(row.created_at),
    }


def import_view(report: ImportReport) -> dict[str, Any]:
    return {**report.summary(), "skipped": report.skipped}
