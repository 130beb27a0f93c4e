"""Orders: create (allocate an address), read, cancel (docs/api.md, Orders; docs/design.md,
invariants 13 and 14).

`create_order` and `cancel_order` own their write transaction; the API and the CLI call them.
Creation is idempotent per orderReference: the same fields again return the existing order
(whatever its status), other fields are a 409 naming it. However many creations of one
reference race, one order exists and one address is allocated: the database's unique index on
the reference decides, and the losers' statements (their claims included) roll back. (On SQLite
the one writer looks the reference up first, in the same transaction: a loser writes nothing.)
On SQLite a creation is one trip to the writer's thread, committed in groups, as a bind is
(`pool.orders.one_trip_repository`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.bindings.service import never_used_hint
from pool.kit.clock import utc_now
from pool.kit.config import OrderSettings
from pool.kit.db import Database, dumps_json
from pool.kit.errors import (
    Conflict,
    DuplicateOrderReference,
    InsufficientAddresses,
    NotFound,
    RaceLost,
)
from pool.orders import allocation_repository as allocation
from pool.orders import listing_repository as listing
from pool.orders import one_trip_repository as one_trip
from pool.orders.ending import end_order
from pool.orders.intake import ResolvedOrder, resolve, same_request
from pool.orders.payloads import order_payload, order_payloads, with_address
from pool.orders.records import CreatedOrder, OrderAsk, OrderChain
from pool.orders.repository import OrderRow, order_by_reference
from pool.vocabulary import CANCELLED, ORDER_CREATED, PENDING
from pool.webhooks.events_repository import insert_event
from pool.webhooks.outbox import new_event_id

ORDER_ID_PREFIX = "ord_"
PAY_PATH = "/pay/order/"


def new_order_id() -> str:
    """`ord_` + 128 random bits: the public payment page's key, unguessable."""
    return ORDER_ID_PREFIX + secrets.token_hex(16)


def payment_url(base_url: str, order_id: str) -> str:
    return f"{base_url.rstrip('/')}{PAY_PATH}{order_id}"


async def create_order(
    db: Database,
    *,
    ask: OrderAsk,
    chains: Mapping[str, OrderChain],
    settings: OrderSettings,
    allow_http_urls: bool,
    base_url: str,
    actor: str,
) -> CreatedOrder:
    """A new order with an address of the pool (created=True), or the existing order of this
    reference when asked for with the same fields; DuplicateOrderReference otherwise."""
    resolved = resolve(ask, chains=chains, settings=settings, allow_http=allow_http_urls)
    if db.is_sqlite:
        new = new_order(resolved, base_url=base_url, actor=actor, now=utc_now())
        created = await _create_in_one_trip(db, new)
        if created is not None:
            return CreatedOrder(created, created=True)
        # Nothing written: the reference names an order already (a retry: answered from a
        # read, the writer left alone), or the pool is dry (the ordinary path below claims
        # again, and says so).
        found = await _existing_by_reference(db, resolved)
        if found is not None:
            return found

    async def work(conn: AsyncConnection) -> CreatedOrder:
        return await _create(conn, resolved, base_url=base_url, actor=actor)

    try:
        # PostgreSQL: one statement, no transaction around it; SQLite: BEGIN IMMEDIATE.
        return await db.run_write(work, attempts=1, single_statement=True)
    except RaceLost:
        # Another creation of this reference committed first: its order is the answer.
        found = await _existing_by_reference(db, resolved)
        if found is None:  # pragma: no cover - the unique index said it exists
            raise
        return found


async def _existing_by_reference(db: Database, resolved: ResolvedOrder) -> CreatedOrder | None:
    async with db.read() as conn:
        existing = await order_by_reference(conn, resolved.ask.reference)
        return None if existing is None else await _existing(conn, existing, resolved)


async def _create(
    conn: AsyncConnection, resolved: ResolvedOrder, *, base_url: str, actor: str
) -> CreatedOrder:
    new = new_order(resolved, base_url=base_url, actor=actor, now=utc_now())
    order = await insert_new_order(conn, new)
    if order is not None:
        return CreatedOrder(order, created=True)
    existing = await order_by_reference(conn, new.reference)
    if existing is not None:
        return await _existing(conn, existing, resolved)
    raise InsufficientAddresses(new.protocol)


def new_order(
    resolved: ResolvedOrder,
    *,
    base_url: str,
    actor: str,
    now: datetime,
    payment_link_id: str | None = None,
) -> allocation.NewOrder:
    window_ends_at = now + resolved.window
    return order_to_record(
        resolved,
        order_id=new_order_id(),
        amount=resolved.amount,
        times=(now, window_ends_at, window_ends_at + resolved.grace),
        base_url=base_url,
        actor=actor,
        payment_link_id=payment_link_id,
    )


async def insert_new_order(
    conn: AsyncConnection, new: allocation.NewOrder
) -> dict[str, Any] | None:
    """The order, its address, event and deliveries, in the caller's transaction (one statement
    on PostgreSQL); its object, or None when no address is free or the reference is taken."""
    if conn.dialect.name == "postgresql":
        return await _create_in_one_statement(conn, new)
    return await _create_step_by_step(conn, new)


def order_to_record(
    resolved: ResolvedOrder,
    *,
    order_id: str,
    amount: int,
    times: tuple[datetime, datetime, datetime],
    base_url: str,
    actor: str,
    payment_link_id: str | None = None,
) -> allocation.NewOrder:
    """The row an accepted request becomes: `times` are its creation, window end, grace end
    (ours for a local order; PayIn's, checked, for an upstream one)."""
    created_at, window_ends_at, grace_ends_at = times
    return allocation.NewOrder(
        order_id=order_id,
        reference=resolved.ask.reference,
        protocol=resolved.chain.protocol,
        chain_id=resolved.chain.chain_id,
        currency=resolved.token.symbol,
        token_contract=resolved.token.contract,
        decimals=resolved.token.decimals,
        amount=amount,
        confirmations=resolved.chain.confirmations,
        metadata=resolved.ask.metadata,
        success_url=resolved.ask.success_url,
        cancel_url=resolved.ask.cancel_url,
        payment_url=payment_url(base_url, order_id),
        now=created_at,
        window_ends_at=window_ends_at,
        grace_ends_at=grace_ends_at,
        actor=actor,
        payment_link_id=payment_link_id,
    )


def _row(new: allocation.NewOrder, address_id: int, address: str) -> OrderRow:
    """The new order as `orders_query` would read it back."""
    return OrderRow(
        id=new.order_id,
        order_reference=new.reference,
        protocol=new.protocol,
        chain_id=new.chain_id,
        currency=new.currency,
        token_contract=new.token_contract,
        decimals=new.decimals,
        amount=new.amount,
        address_id=address_id,
        address=address,
        status=PENDING,
        required_confirmations=new.confirmations,
        metadata=new.metadata,
        success_url=new.success_url,
        cancel_url=new.cancel_url,
        payment_url=new.payment_url,
        created_at=new.now,
        window_ends_at=new.window_ends_at,
        grace_ends_at=new.grace_ends_at,
        completed_at=None,
        expired_at=None,
        cancelled_at=None,
        completed_by=None,
        cooldown_until=None,
        payment_link_id=new.payment_link_id,
    )


async def _create_in_one_statement(
    conn: AsyncConnection, new: allocation.NewOrder
) -> dict[str, Any] | None:
    # The event's order object is built here, the address left as a placeholder the statement
    # fills in: random, so no client-chosen text (metadata, URLs) can collide with it.
    placeholder = f"addrpool-address-{secrets.token_hex(16)}"
    event_payload = order_payload(_row(new, 0, placeholder), [])
    hint = never_used_hint()
    allocated = await allocation.claim_and_create(
        conn,
        new=new,
        event_id=new_event_id(),
        payload_text=dumps_json(event_payload),
        placeholder=f'"{placeholder}"',
        never_used_from=hint.get(new.protocol, 0),
    )
    if allocated is None:
        return None
    if allocated.never_used:
        hint[new.protocol] = allocated.address_id + 1
    # The object the event holds, with the address the statement put in it.
    return with_address(event_payload, allocated.address)


async def _create_step_by_step(
    conn: AsyncConnection, new: allocation.NewOrder
) -> dict[str, Any] | None:
    """SQLite through SQLAlchemy (the one-trip path's fallback and its reference: both write the
    same rows): the surrounding BEGIN IMMEDIATE makes this the only writer, so a reference seen
    free here stays free until the commit."""
    if await order_by_reference(conn, new.reference) is not None:
        return None
    allocated = await allocation.claim_address(conn, protocol=new.protocol, now=new.now)
    if allocated is None:
        return None
    await allocation.insert_order(conn, new=new, address_id=allocated.address_id)
    payload = order_payload(_row(new, allocated.address_id, allocated.address), [])
    await insert_event(conn, event_id=new_event_id(), type=ORDER_CREATED, data=payload, now=new.now)
    return payload


async def _create_in_one_trip(db: Database, new: allocation.NewOrder) -> dict[str, Any] | None:
    """SQLite: the look-up of the reference, claim, order, event and deliveries in one trip to
    the writer's thread, committed with the other writes queued beside it (pool.kit.group_commit);
    the order object, or None when nothing was written."""
    event_id = new_event_id()
    # Built here, not in the writer's thread, where every moment holds the other writers up.
    payload = order_payload(_row(new, 0, ""), [])
    try:
        return await db.write_in_one_trip(
            lambda trip: one_trip.claim_and_create(trip, new, event_id=event_id, payload=payload)
        )
    except RaceLost:  # pragma: no cover - see one_trip.claim_and_create
        return None


async def _existing(
    conn: AsyncConnection, existing: OrderRow, resolved: ResolvedOrder
) -> CreatedOrder:
    if not same_request(existing, resolved):
        raise DuplicateOrderReference(existing.order_reference, existing.id)
    return CreatedOrder((await order_payloads(conn, [existing.id]))[existing.id], created=False)


async def get_order(conn: AsyncConnection, order_id: str) -> dict[str, Any]:
    found = await order_payloads(conn, [order_id])
    if order_id not in found:
        raise order_not_found(order_id)
    return found[order_id]


async def get_order_by_reference(conn: AsyncConnection, reference: str) -> dict[str, Any]:
    existing = await order_by_reference(conn, reference)
    if existing is None:
        raise NotFound(f"No order with orderReference {reference!r}", code="ORDER_NOT_FOUND")
    return (await order_payloads(conn, [existing.id]))[existing.id]


def order_not_found(order_id: str) -> NotFound:
    return NotFound(f"Order {order_id} not found", code="ORDER_NOT_FOUND")


def not_cancellable(order_id: str, why: str) -> Conflict:
    return Conflict(f"Order {order_id} cannot be cancelled: {why}", code="ORDER_NOT_CANCELLABLE")


async def cancel_order(
    db: Database, *, order_id: str, cooldown: timedelta
) -> tuple[dict[str, Any], bool]:
    """(the order, whether this call cancelled it). A pending order that has received nothing
    is cancelled; one already cancelled is returned as it is (a retried cancel); any other is
    ORDER_NOT_CANCELLABLE."""

    async def work(conn: AsyncConnection) -> tuple[dict[str, Any], bool]:
        order = await listing.lock_order(conn, order_id)
        if order is None:
            raise order_not_found(order_id)
        if order.status == CANCELLED:
            return await get_order(conn, order_id), False
        if order.status != PENDING:
            raise not_cancellable(order_id, f"it is {order.status}")
        if await listing.has_received_payment(conn, order_id):
            raise not_cancellable(order_id, "a payment to it is on chain")
        ended = await end_order(
            conn,
            order_id=order_id,
            address_id=order.address_id,
            status=CANCELLED,
            now=utc_now(),
            cooldown=cooldown,
        )
        if not ended:  # pragma: no cover - the row lock (PostgreSQL) or the one writer (SQLite)
            raise not_cancellable(order_id, "it ended meanwhile")
        return await get_order(conn, order_id), True

    return await db.run_write(work)
