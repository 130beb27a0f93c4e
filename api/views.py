"""Domain values → the camelCase JSON objects of docs/api.md.

The objects the CLI prints as well live in pool/ (pool/deposits/payloads.py,
pool/bindings/payloads.py), so `addrpool … --json` shows exactly what the API does without
importing FastAPI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pool.addresses.importer import ImportReport
from pool.addresses.repository import AddressRow
from pool.bindings.payloads import history_payload, reference_payload, reference_summary_payload
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
    return history_payload(binding)


def reference_summary_view(binding: Binding, totals: ReferenceTotals) -> dict[str, Any]:
    return reference_summary_payload(binding, totals)


def reference_view(
    view: ReferenceView, monitored_chains: list[str] | None = None
) -> dict[str, Any]:
    return reference_payload(view, monitored_chains or [])


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
