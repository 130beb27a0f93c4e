"""Upstream mode: PayIn's `order.completed`, `order.expired` and `order.cancelled` against our
own observation of the chain (the worker in chains/checks/upstream_check.py calls this).

What counts as paid is what invariant 14 counts: confirmed transfers of the order's token on its
chain to its address, mined (block time) between its creation second and its grace end.

matched        PayIn's word agrees with what we saw;
mismatched     the event names the order with another chain, token or amount (critical);
order_unknown  no order of that id was recorded here (critical): created behind our back, or
               our record of it was lost;
order_unpaid   completed at PayIn, and we have not seen it paid in time once `upstream_grace`
               has passed (critical); until then `not_seen`, checked again (our confirmations
               may lag PayIn's);
order_paid     expired or cancelled at PayIn, while we saw it paid in time (critical); while
               the payments we saw are on chain but not yet confirmed, `not_seen` (within
               `upstream_grace`: one never confirmed by then did not pay it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.amounts import format_units, same_amount
from pool.orders.payloads import payment_moment_fits
from pool.orders.reconcile_repository import PaidTransfer, paid_transfers
from pool.orders.repository import OrderRow, orders_by_ids
from pool.vocabulary import (
    CREDITED,
    ON_CHAIN,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_EXPIRED,
)

ORDER_EVENTS = (ORDER_COMPLETED, ORDER_EXPIRED, ORDER_CANCELLED)
# Final statuses that fire a critical alert.
ORDER_DISCREPANCIES = ("order_unknown", "order_unpaid", "order_paid")


@dataclass(frozen=True, slots=True)
class OrderVerdict:
    status: str
    reason: str | None = None


async def check_order_event(
    conn: AsyncConnection,
    event_type: str,
    data: dict[str, Any],
    *,
    received_at: datetime,
    now: datetime,
    grace: timedelta,
) -> OrderVerdict:
    order_id = str(data.get("orderId"))
    order = (await orders_by_ids(conn, [order_id])).get(order_id)
    if order is None:
        return OrderVerdict(
            "order_unknown", f"PayIn's {event_type} names {order_id!r}, unknown here"
        )
    differences = _differences(data, order)
    if differences:
        return OrderVerdict("mismatched", "; ".join(differences))
    transfers = (await paid_transfers(conn, [order_id]))[order_id]
    confirmed = _in_time(order, transfers, CREDITED)
    seen = _in_time(order, transfers, ON_CHAIN)
    amount = format_units(order.amount, order.decimals)
    saw = f"we saw {format_units(confirmed, order.decimals)} of {amount} {order.currency} confirmed"
    if event_type == ORDER_COMPLETED:
        if confirmed >= order.amount:
            return OrderVerdict("matched")
        if now - received_at <= grace:
            return OrderVerdict("not_seen", f"completed at PayIn; so far {saw}")
        return OrderVerdict("order_unpaid", f"completed at PayIn; {saw} in its time")
    if confirmed >= order.amount:
        return OrderVerdict("order_paid", f"{event_type} at PayIn; {saw} in its time")
    if seen >= order.amount and now - received_at <= grace:
        waiting = "payments in its time await their confirmations"
        return OrderVerdict("not_seen", f"{event_type} at PayIn; {waiting}")
    return OrderVerdict("matched")


def _in_time(order: OrderRow, transfers: Sequence[PaidTransfer], statuses: Sequence[str]) -> int:
    return sum(
        t.amount
        for t in transfers
        if t.status in statuses
        and t.block_time is not None
        and payment_moment_fits(order, t.block_time)
    )


def _differences(data: dict[str, Any], order: OrderRow) -> list[str]:
    """What PayIn's event says of the order that ours does not (fields it left out agree)."""
    found = []
    for field, ours in (("chainId", order.chain_id), ("currency", order.currency)):
        if data.get(field) is not None and data.get(field) != ours:
            found.append(f"{field}: PayIn {data.get(field)}, ours {ours}")
    ours_amount = format_units(order.amount, order.decimals)
    if data.get("amount") is not None and not same_amount(data.get("amount"), ours_amount):
        found.append(f"amount: PayIn {data.get('amount')}, ours {ours_amount}")
    return found
