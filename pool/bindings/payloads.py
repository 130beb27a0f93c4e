"""docs/api.md's reference objects: what `GET /deposits/references…` and
`addrpool references show` print, one function for both so they cannot drift apart."""

from __future__ import annotations

from typing import Any

from pool.bindings.records import Binding
from pool.bindings.references import ReferenceTotals, ReferenceView
from pool.kit.clock import isoformat_z, isoformat_z_or_none


def history_payload(binding: Binding) -> dict[str, Any]:
    return {
        "address": binding.address,
        "protocol": binding.protocol,
        "boundAt": isoformat_z(binding.bound_at),
        "unboundAt": isoformat_z_or_none(binding.unbound_at),
        "cooldownUntil": isoformat_z_or_none(binding.cooldown_until),
    }


def reference_summary_payload(binding: Binding, totals: ReferenceTotals) -> dict[str, Any]:
    return {
        "depositReference": binding.deposit_reference,
        "protocol": binding.protocol,
        "address": binding.address,
        "boundAt": isoformat_z(binding.bound_at),
        "totalDeposits": totals.count,
        "totalAmount": totals.total_amount,
    }


def reference_payload(view: ReferenceView, monitored_chains: list[str]) -> dict[str, Any]:
    """A reference with its totals per currency and its binding history; `monitored_chains`
    are the chain ids watched for its protocol (the serving process's, or the CLI's
    configuration's)."""
    return {
        **reference_summary_payload(view.binding, view.totals),
        "totals": view.totals.by_currency,
        "metadata": view.binding.metadata,
        "bindings": [history_payload(b) for b in view.history],
        "monitoredChains": monitored_chains,
    }
