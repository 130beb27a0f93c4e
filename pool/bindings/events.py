"""The payloads of `deposit.address_bound` and `deposit.address_unbound`.

A bind is written two ways: step by step in Python (SQLite, and binds through PayIn), and in one
statement on PostgreSQL (`pool.bindings.claim_repository`), whose event is built in SQL. Both
come from BOUND_EVENT_FIELDS, so a receiver sees the same keys, in the same order, with the same
values whichever wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pool.bindings.records import Binding, Unbound
from pool.kit.clock import isoformat_z


@dataclass(frozen=True, slots=True)
class BoundField:
    key: str
    read: Callable[[Binding], Any]  # the value, from the new binding
    sql: str  # the same value in CLAIM_AND_BIND's terms: its parameters and `claimed` row


BOUND_EVENT_FIELDS = (
    BoundField("depositReference", lambda b: b.deposit_reference, "CAST(:reference AS text)"),
    BoundField("protocol", lambda b: b.protocol, "CAST(:protocol AS text)"),
    BoundField("address", lambda b: b.address, "claimed.address"),
    BoundField("boundAt", lambda b: isoformat_z(b.bound_at), "CAST(:bound_at_text AS text)"),
    BoundField("metadata", lambda b: b.metadata, "CAST(:metadata AS json)"),
)


def bound_event_data(new: Binding) -> dict[str, Any]:
    return {field.key: field.read(new) for field in BOUND_EVENT_FIELDS}


def bound_event_sql() -> str:
    """PostgreSQL's `json_build_object(…)` of the same payload."""
    pairs = ", ".join(f"'{field.key}', {field.sql}" for field in BOUND_EVENT_FIELDS)
    return f"json_build_object({pairs})"


def unbound_event_data(result: Unbound, now: datetime) -> dict[str, Any]:
    return {
        "depositReference": result.deposit_reference,
        "protocol": result.protocol,
        "address": result.address,
        "unboundAt": isoformat_z(now),
        "cooldownUntil": isoformat_z(result.cooldown_until),
    }
