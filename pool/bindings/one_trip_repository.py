"""SQLite's bind in one trip to the writer connection's thread (pool.kit.sqlite_trip).

The same statements as the step-by-step path (`pool.bindings.service._bind_step_by_step`), the
very objects it runs, compiled once for SQLite: the claim (`pool.addresses.repository`), the
binding, the `deposit.address_bound` event and its deliveries (invariant 8), all in one
transaction. Run by `Database.write_in_one_trip`, so this runs in that thread: no `await`.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from pool.addresses.repository import CLAIM_FOR_REFERENCE
from pool.bindings.events import bound_event_data
from pool.bindings.records import Binding, BindIntent
from pool.bindings.repository import INSERT_BINDING
from pool.kit.errors import RaceLost
from pool.kit.sqlite_trip import Trip, TripStatement
from pool.vocabulary import ADDRESS_BOUND
from pool.webhooks.events_repository import INSERT_DELIVERIES, INSERT_EVENT

_CLAIM = TripStatement(CLAIM_FOR_REFERENCE)
_BINDING = TripStatement(
    INSERT_BINDING,
    column_keys=("deposit_reference", "protocol", "address_id", "metadata", "bound_at", "bound_by"),
)
_EVENT = TripStatement(INSERT_EVENT, column_keys=("id", "type", "data", "created_at"))
_DELIVERIES = TripStatement(INSERT_DELIVERIES["sqlite"])


def claim_and_bind(trip: Trip, intent: BindIntent, *, event_id: str) -> Binding | None:
    """The new binding, or None: the reference is already bound, or nothing is free (the
    caller then finds out which, the ordinary way)."""
    claim = {"p_protocol": intent.protocol, "p_reference": intent.reference, "p_now": intent.now}
    claimed = trip.rows(_CLAIM, claim)
    if not claimed:
        return None
    address_id, address_text = claimed[0]
    binding_values = {
        "deposit_reference": intent.reference,
        "protocol": intent.protocol,
        "address_id": address_id,
        "metadata": intent.metadata,
        "bound_at": intent.now,
        "bound_by": intent.actor,
    }
    try:
        binding_id = trip.rows(_BINDING, binding_values)[0][0]
    except IntegrityError as exc:  # another writer bound this reference first: start again
        raise RaceLost("a concurrent bind won; retrying") from exc
    new = Binding(
        binding_id, intent.reference, intent.protocol, address_text, intent.metadata, intent.now
    )
    event_values = {
        "id": event_id,
        "type": ADDRESS_BOUND,
        "data": bound_event_data(new),
        "created_at": intent.now,
    }
    seq = trip.rows(_EVENT, event_values)[0][0]
    trip.rows(_DELIVERIES, {"seq": seq, "now": intent.now})
    return new
