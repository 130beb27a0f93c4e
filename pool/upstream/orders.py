"""Upstream mode's orders: PayIn creates and cancels, addrpool checks and records.

A create is checked here first (chain watched, token, amount, URLs, times: a refusal costs PayIn
nothing), then forwarded. PayIn's answer must describe the order we asked for, at an address of
our pool on that protocol that is neither archived nor held by another pending order here;
otherwise our caller gets a 502, nothing is recorded, and the address case raises the same
critical alert a bind raises (funds sent there would reach keys we do not hold, or be claimed by
two orders). An accepted order is recorded as a local one is — PayIn's orderId, the address
`allocated` (so no bind here reuses it), `order.created` — so that our watcher links payments
to it, our lifecycle runs on our own chain observation, and PayIn's `order.*` webhooks can be
compared with it (pool/upstream/order_check.py).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.bindings import service as binding_service
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import (
    AddrpoolError,
    NotFound,
    RaceLost,
    UpstreamAddressUnknown,
    UpstreamAnswerInvalid,
)
from pool.orders import allocation_repository as allocation
from pool.orders import listing_repository as listing
from pool.orders.ending import end_order
from pool.orders.intake import ResolvedOrder, parse_amount
from pool.orders.payloads import order_payloads
from pool.orders.records import CreatedOrder
from pool.orders.repository import orders_by_ids
from pool.orders.service import get_order, not_cancellable, order_to_record
from pool.upstream import repository as repo
from pool.upstream.address_alert import alert_unusable_address
from pool.upstream.client import UpstreamClient
from pool.upstream.order_answer import answered_times, check_answer
from pool.vocabulary import (
    ALLOCATED,
    ARCHIVED,
    BOUND,
    CANCELLED,
    ORDER_CREATED,
    PENDING,
    AddressParser,
)
from pool.webhooks.events_repository import insert_event
from pool.webhooks.outbox import new_event_id

log = logging.getLogger("addrpool.upstream")


async def create_order_through_upstream(
    db: Database,
    client: UpstreamClient,
    parse: AddressParser,
    *,
    body: dict[str, Any],
    resolved: ResolvedOrder,
    base_url: str,
    actor: str,
) -> CreatedOrder:
    """`body` is the client's request as PayIn's guide spells it; `resolved` our reading of it."""
    status, data = await client.create_order(body)
    order_id = check_answer(data, resolved)
    amount = parse_amount(str(data.get("amount")), resolved.token)
    shown = data.get("address")
    address_id, refusal = await _usable_address(db, parse, resolved, shown, order_id)
    if address_id is None:
        await alert_unusable_address(
            db,
            protocol=resolved.chain.protocol,
            shown=shown,
            message="PayIn returned an address an order cannot use",
            details={
                "orderId": order_id,
                "orderReference": resolved.ask.reference,
                "protocol": resolved.chain.protocol,
                "address": str(shown),
                "why": refusal,
            },
        )
        raise UpstreamAddressUnknown(
            f"PayIn returned {shown!r} for order {order_id} on {resolved.chain.chain_id}, "
            f"which {refusal}: refused (funds sent there would reach keys we do not hold, or "
            "be claimed by two orders)"
        )
    times = answered_times(data, resolved, now=utc_now())
    new = order_to_record(
        resolved, order_id=order_id, amount=amount, times=times, base_url=base_url, actor=actor
    )

    async def record(conn: AsyncConnection) -> dict[str, Any]:
        return await _record_order(conn, new, address_id=address_id, actor=actor)

    try:
        order = await db.run_write(record)
    except RaceLost:  # the same order recorded at once by a retry of this request
        async with db.read() as conn:
            order = await get_order(conn, order_id)
    # PayIn's word decides new vs existing, as for binds.
    return CreatedOrder(order, created=status == 201)


async def _usable_address(
    db: Database, parse: AddressParser, resolved: ResolvedOrder, shown: Any, order_id: str
) -> tuple[int | None, str]:
    """(its id, "") when PayIn's address may carry this order; (None, why) otherwise."""
    try:
        text = parse(str(shown)).text
    except AddrpoolError:
        return None, f"is not a {resolved.chain.protocol} address"
    async with db.read() as conn:
        held = await repo.address_holding(conn, protocol=resolved.chain.protocol, text=text)
    if held is None:
        return None, "is not in our pool"
    if held.status == ARCHIVED:
        return None, "is archived in our pool"
    if held.status == ALLOCATED and held.order_id != order_id:
        return None, f"is held here by pending order {held.order_id}"
    return held.address_id, ""


async def _record_order(
    conn: AsyncConnection, new: allocation.NewOrder, *, address_id: int, actor: str
) -> dict[str, Any]:
    known = (await orders_by_ids(conn, [new.order_id])).get(new.order_id)
    if known is not None:
        return (await order_payloads(conn, [new.order_id]))[new.order_id]
    existing = await repo.order_id_of_reference(conn, new.reference)
    if existing is not None:
        raise UpstreamAnswerInvalid(
            f"PayIn answered order {new.order_id} for orderReference {new.reference!r}, which "
            f"is order {existing} here: refused, nothing recorded"
        )
    held = await repo.lock_address(conn, address_id=address_id)
    if held is None or held.status == ARCHIVED or held.status == ALLOCATED:
        # Changed since the check (an archive, or another order): refused, nothing written.
        raise UpstreamAddressUnknown(
            f"the address PayIn returned for order {new.order_id} was taken meanwhile here"
        )
    now = utc_now()
    if held.status == BOUND:
        # PayIn is the authority: a binding we still record on it ended there (as a bind
        # brings a stale holder in line, events included).
        with contextlib.suppress(NotFound):
            await binding_service.unbind(
                conn, actor=actor, now=now, cooldown=timedelta(0), address_id=address_id
            )
        log.warning("local binding brought in line with a PayIn order", extra={"id": new.order_id})
    await repo.mark_allocated(conn, address_id=address_id)
    await allocation.insert_order(conn, new=new, address_id=address_id)
    order = (await order_payloads(conn, [new.order_id]))[new.order_id]
    await insert_event(conn, event_id=new_event_id(), type=ORDER_CREATED, data=order, now=now)
    return order


async def cancel_order_through_upstream(
    db: Database, client: UpstreamClient, *, order_id: str, cooldown: timedelta
) -> tuple[dict[str, Any], bool]:
    """(the order, whether this call cancelled it here). Refused first on our own observation
    (a payment on chain, or an order already ended here), then PayIn's cancel, then ours."""
    async with db.read() as conn:
        local = (await orders_by_ids(conn, [order_id])).get(order_id)
        if local is not None and local.status not in (PENDING, CANCELLED):
            raise not_cancellable(order_id, f"it is {local.status}")
        if local is not None and await listing.has_received_payment(conn, order_id):
            raise not_cancellable(order_id, "a payment to it is on chain")
    answered = await client.cancel_order(order_id)
    if local is None:  # PayIn's order, never recorded here: its answer as it gave it
        log.warning("cancelled at PayIn an order not recorded here", extra={"id": order_id})
        return answered, answered.get("status") == CANCELLED

    async def work(conn: AsyncConnection) -> tuple[dict[str, Any], bool]:
        order = await listing.lock_order(conn, order_id)
        if order is None or order.status != PENDING:
            return await get_order(conn, order_id), False
        ended = await end_order(
            conn,
            order_id=order_id,
            address_id=order.address_id,
            status=CANCELLED,
            now=utc_now(),
            cooldown=cooldown,
        )
        return await get_order(conn, order_id), ended

    return await db.run_write(work)
