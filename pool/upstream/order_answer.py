"""Upstream mode: whether PayIn's answer to an order's creation describes the order we asked for,
and the order's times as PayIn set them.

Pure. An answer for another reference, chain, token or amount, or without an order id our routes
can name, is refused (502 `UPSTREAM_ANSWER_INVALID`) before anything is recorded: recording it
would watch for a payment nobody asked for.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pool.kit.errors import AddrpoolError, UpstreamAnswerInvalid
from pool.orders.intake import ResolvedOrder, parse_amount

# The same as the order routes' path parameter (api/routes/orders.py).
ORDER_ID = re.compile(r"^ord_[A-Za-z0-9]{1,60}$")


def check_answer(data: dict[str, Any], resolved: ResolvedOrder) -> str:
    """PayIn's order id, once its answer agrees with the request; UpstreamAnswerInvalid else."""
    order_id = data.get("orderId")
    if not isinstance(order_id, str) or not ORDER_ID.fullmatch(order_id):
        raise _invalid(f"its orderId {order_id!r} is not an order id (ord_ and 1-60 letters)")
    asked = {
        "orderReference": resolved.ask.reference,
        "chainId": resolved.chain.chain_id,
        "currency": resolved.token.symbol,
    }
    for field, value in asked.items():
        if data.get(field) != value:
            raise _invalid(f"its {field} is {data.get(field)!r}, {value!r} was asked")
    try:
        amount = parse_amount(str(data.get("amount")), resolved.token)
    except AddrpoolError:
        amount = None
    if amount != resolved.amount:
        raise _invalid(f"its amount is {data.get('amount')!r}, {resolved.ask.amount!r} was asked")
    return order_id


def answered_times(
    data: dict[str, Any], resolved: ResolvedOrder, *, now: datetime
) -> tuple[datetime, datetime, datetime]:
    """(created, payment window end, grace end) as PayIn answered them.

    PayIn's guide gives `expiresAt` only: the end of the grace period, after which its
    `order.expired` is sent (addrpool's own answers say the same, with `gracePeriodEndsAt` and
    `paymentWindowEndsAt` beside it). What PayIn leaves out follows from the request: our
    moment of recording, and the requested grace before the end.
    """
    # PayIn created it before it answered: a later createdAt is its clock ahead of ours.
    created = min(_moment(data.get("createdAt")) or now, now)
    grace_end = _moment(data.get("gracePeriodEndsAt")) or _moment(data.get("expiresAt"))
    if grace_end is None:
        grace_end = created + resolved.window + resolved.grace
    window_end = _moment(data.get("paymentWindowEndsAt")) or max(
        created, grace_end - resolved.grace
    )
    if not created <= window_end <= grace_end:
        raise _invalid(
            f"its times are out of order (created {created}, payment window end {window_end}, "
            f"expiry {grace_end})"
        )
    return created, window_end, grace_end


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _invalid(why: str) -> UpstreamAnswerInvalid:
    return UpstreamAnswerInvalid(
        f"PayIn's answer to the order's creation cannot be used ({why}): refused, nothing "
        "recorded here"
    )
