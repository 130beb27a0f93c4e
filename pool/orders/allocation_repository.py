"""SQL that allocates an order's address: claim, the order row, its event and deliveries.

On PostgreSQL it is ONE statement (`CLAIM_AND_CREATE`), as a bind is
(`pool.bindings.claim_repository`, whose comments explain the data-modifying CTEs, SKIP LOCKED
and the `never_used_from` hint): claiming the address, inserting the order, its
`order.created` event and the event's deliveries either all happen or none does. A second
order with the same reference fails the statement on the unique index, which undoes the claim
too (the caller reads the winner's order). On SQLite the same steps run one by one inside the
caller's BEGIN IMMEDIATE transaction (the only writer), with the same claim — through
SQLAlchemy here, in one trip to the writer's thread in `pool.orders.one_trip_repository`, which
runs these very statements.

The claim takes only `available` addresses that are not cooling down, and leaves
`last_reference` NULL: an address held by an order is no reference's to reclaim (invariant 2's
shortcut in the bind claim needs `last_reference`), so it can never be bound and allocated at
once (invariant 13, docs/design.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.errors import RaceLost
from pool.kit.tables import address, payment_order
from pool.kit.types import BaseUnits, UTCDateTime
from pool.vocabulary import ALLOCATED, AVAILABLE, ORDER_CREATED, PENDING, Protocol
from pool.webhooks.events_repository import fan_out

# The never-used addresses from the hint, then any free one that is not cooling down; the
# "never used" branch may ignore cooldowns because an ended order's address is released with
# `recycled_at` set (pool.orders.repository.release_address), as an unbound one is.
_CANDIDATE = """
    SELECT COALESCE(
        (SELECT a.id FROM address a
          WHERE a.protocol = :protocol AND a.status = 'available'
            AND a.recycled_at IS NULL AND a.id >= :never_used_from
          ORDER BY a.recycled_at ASC NULLS FIRST, a.id
          LIMIT 1 FOR UPDATE SKIP LOCKED),
        (SELECT a.id FROM address a
          WHERE a.protocol = :protocol AND a.status = 'available'
            AND (a.cooldown_until IS NULL OR a.cooldown_until <= :now)
          ORDER BY a.recycled_at ASC NULLS FIRST, a.id
          LIMIT 1 FOR UPDATE SKIP LOCKED)
    ) AS id"""

CLAIM_AND_CREATE = text(
    f"""
WITH candidate AS ({_CANDIDATE}
),
claimed AS (
    UPDATE address SET status = 'allocated', last_reference = NULL
     WHERE id = (SELECT id FROM candidate) AND status = 'available'
    RETURNING id, address, recycled_at IS NULL AS never_used
),
new_order AS (
    INSERT INTO payment_order (
        id, order_reference, protocol, chain_id, currency, token_contract, decimals, amount,
        address_id, status, required_confirmations, metadata, success_url, cancel_url,
        payment_url, created_at, window_ends_at, grace_ends_at, created_by, payment_link_id)
    SELECT :order_id, :reference, :protocol, :chain_id, :currency, :token_contract, :decimals,
           :amount, claimed.id, '{PENDING}', :confirmations, CAST(:metadata AS json),
           :success_url, :cancel_url, :payment_url, :now, :window_ends_at, :grace_ends_at, :actor,
           :payment_link_id
      FROM claimed
    RETURNING id
),
new_event AS (
    -- The order object, built in Python (pool.orders.payloads) with a placeholder where the
    -- claimed address goes: the same keys, in the same order, as the SQLite path writes.
    INSERT INTO event (id, type, data, created_at)
    SELECT :event_id, '{ORDER_CREATED}',
           CAST(replace(CAST(:payload AS text), :placeholder, to_json(claimed.address)::text)
                AS json),
           :now
      FROM claimed, new_order
    RETURNING seq, type
),
new_deliveries AS (
    -- Invariant 8: the event's deliveries are written with it, one per subscribed endpoint.
{fan_out("postgresql", events="new_event ev", now=":now")}
)
SELECT claimed.id, claimed.address, claimed.never_used FROM claimed, new_order
"""  # noqa: S608 - constant SQL, values bound
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("window_ends_at", type_=UTCDateTime()),
    bindparam("grace_ends_at", type_=UTCDateTime()),
    bindparam("amount", type_=BaseUnits()),
)

# SQLite's claim (no FOR UPDATE there: BEGIN IMMEDIATE already makes this the only writer).
_NEXT_FREE = (
    select(address.c.id)
    .where(
        address.c.protocol == bindparam("p_protocol"),
        address.c.status == AVAILABLE,
        or_(address.c.cooldown_until.is_(None), address.c.cooldown_until <= bindparam("p_now")),
    )
    .order_by(address.c.recycled_at.asc().nullsfirst(), address.c.id)
    .limit(1)
    .scalar_subquery()
)
CLAIM_ONE = (
    update(address)
    .where(address.c.id == _NEXT_FREE, address.c.status == AVAILABLE)
    .values(status=ALLOCATED, last_reference=None)
    .returning(address.c.id, address.c.address, address.c.recycled_at.is_(None))
)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """What an order's creation needs written, every value decided before the claim."""

    order_id: str
    reference: str
    protocol: Protocol
    chain_id: str
    currency: str
    token_contract: str
    decimals: int
    amount: int
    confirmations: int
    metadata: dict[str, Any] | None
    success_url: str | None
    cancel_url: str | None
    payment_url: str
    now: datetime
    window_ends_at: datetime
    grace_ends_at: datetime
    actor: str
    payment_link_id: str | None = None


@dataclass(frozen=True, slots=True)
class Allocated:
    address_id: int
    address: str
    never_used: bool


def _columns(new: NewOrder) -> dict[str, Any]:
    return {
        "order_id": new.order_id,
        "reference": new.reference,
        "protocol": new.protocol,
        "chain_id": new.chain_id,
        "currency": new.currency,
        "token_contract": new.token_contract,
        "decimals": new.decimals,
        "amount": new.amount,
        "confirmations": new.confirmations,
        "metadata": None if new.metadata is None else orjson.dumps(new.metadata).decode(),
        "success_url": new.success_url,
        "cancel_url": new.cancel_url,
        "payment_url": new.payment_url,
        "now": new.now,
        "window_ends_at": new.window_ends_at,
        "grace_ends_at": new.grace_ends_at,
        "actor": new.actor,
        "payment_link_id": new.payment_link_id,
    }


async def claim_and_create(
    conn: AsyncConnection,
    *,
    new: NewOrder,
    event_id: str,
    payload_text: str,
    placeholder: str,
    never_used_from: int,
) -> Allocated | None:
    """PostgreSQL: the order, its address, event and deliveries in one statement; None when no
    address is free. RaceLost when the reference already names an order (nothing written)."""
    parameters = {
        **_columns(new),
        "event_id": event_id,
        "payload": payload_text,
        "placeholder": placeholder,
        "never_used_from": never_used_from,
    }
    try:
        row = (await conn.execute(CLAIM_AND_CREATE, parameters)).first()
    except IntegrityError as exc:
        raise RaceLost("an order with this reference exists") from exc
    return None if row is None else Allocated(row[0], row[1], row[2])


async def claim_address(
    conn: AsyncConnection, *, protocol: Protocol, now: datetime
) -> Allocated | None:
    """SQLite (the surrounding BEGIN IMMEDIATE makes this the only writer): the next free
    address, never-used first, allocated."""
    row = (await conn.execute(CLAIM_ONE, {"p_protocol": protocol, "p_now": now})).first()
    return None if row is None else Allocated(row[0], row[1], bool(row[2]))


# Built once: every order on SQLite writes one, its values given per call.
INSERT_ORDER = insert(payment_order)
ORDER_COLUMNS = (
    "id",
    "order_reference",
    "protocol",
    "chain_id",
    "currency",
    "token_contract",
    "decimals",
    "amount",
    "address_id",
    "status",
    "required_confirmations",
    "metadata",
    "success_url",
    "cancel_url",
    "payment_url",
    "created_at",
    "window_ends_at",
    "grace_ends_at",
    "created_by",
    "payment_link_id",
)


def order_values(new: NewOrder, address_id: int) -> dict[str, Any]:
    """The order row's `ORDER_COLUMNS` (SQLite: SQLAlchemy's path and the one-trip one)."""
    values = (
        new.order_id,
        new.reference,
        new.protocol,
        new.chain_id,
        new.currency,
        new.token_contract,
        new.decimals,
        new.amount,
        address_id,
        PENDING,
        new.confirmations,
        new.metadata,
        new.success_url,
        new.cancel_url,
        new.payment_url,
        new.now,
        new.window_ends_at,
        new.grace_ends_at,
        new.actor,
        new.payment_link_id,
    )
    return dict(zip(ORDER_COLUMNS, values, strict=True))


async def insert_order(conn: AsyncConnection, *, new: NewOrder, address_id: int) -> None:
    """The order row (SQLite's path); RaceLost on a reference that already names an order."""
    try:
        await conn.execute(INSERT_ORDER, order_values(new, address_id))
    except IntegrityError as exc:
        raise RaceLost("an order with this reference exists") from exc
