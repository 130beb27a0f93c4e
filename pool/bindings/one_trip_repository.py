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
from pool.webhooks.events_repository import insert_event_in_trip

_CLAIM = TripStatement(CLAIM_FOR_REFERENCE)
_BINDING = TripStatement(
    INSERT_BINDING,
    column_keys=("deposit_reference", "protocol", "address_id", "metadata", "bound_at", "bound_by"),
)


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
    insert_event_in_trip(
        trip, event_id=event_id, type=ADDRESS_BOUND, data=bound_event_data(new), now=intent.now
    )
    return new
