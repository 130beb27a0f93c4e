"""SQLite's order creation in one trip to the writer connection's thread (pool.kit.sqlite_trip),
as a bind's is (pool.bindings.one_trip_repository).

The same steps and statements as the step-by-step path (`pool.orders.service`,
`_create_step_by_step`): whether the reference already names an order, the claim
(`pool.orders.allocation_repository.CLAIM_ONE`), the order row, its `order.created` event and the
event's deliveries (invariant 8), all in the caller's savepoint of a shared transaction. Run by
`Database.write_in_one_trip`, so this runs in that thread: no `await`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from pool.kit.errors import RaceLost
from pool.kit.sqlite_trip import Trip, TripStatement
from pool.kit.tables import payment_order
from pool.orders.allocation_repository import (
    CLAIM_ONE,
    INSERT_ORDER,
    ORDER_COLUMNS,
    NewOrder,
    order_values,
)
from pool.orders.payloads import with_address
from pool.vocabulary import ORDER_CREATED
from pool.webhooks.events_repository import insert_event_in_trip

_EXISTING = TripStatement(
    select(payment_order.c.id).where(payment_order.c.order_reference == bindparam("p_reference"))
)
_CLAIM = TripStatement(CLAIM_ONE)
_ORDER = TripStatement(INSERT_ORDER, column_keys=ORDER_COLUMNS)


def claim_and_create(
    trip: Trip, new: NewOrder, *, event_id: str, payload: dict[str, Any]
) -> dict[str, Any] | None:
    """The new order's object (`payload`, built beforehand, with the claimed address put in),
    or None: the reference names an order already, or nothing is free (the caller then finds
    out which, the ordinary way). Orders of one trip run one after the other on one
    connection, so the second of a reference sees the first's row here."""
    if trip.rows(_EXISTING, {"p_reference": new.reference}):
        return None
    claimed = trip.rows(_CLAIM, {"p_protocol": new.protocol, "p_now": new.now})
    if not claimed:
        return None
    address_id, address_text = claimed[0][0], claimed[0][1]
    try:
        trip.rows(_ORDER, order_values(new, address_id))
    except IntegrityError as exc:  # pragma: no cover - the look-up above, in the same transaction
        raise RaceLost("an order with this reference exists") from exc
    created = with_address(payload, address_text)
    insert_event_in_trip(trip, event_id=event_id, type=ORDER_CREATED, data=created, now=new.now)
    return created
