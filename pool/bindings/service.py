"""Bind and unbind (docs/api.md, Deposits; docs/design.md, invariants 1-3).

`bind_address` and `unbind_address` are the use cases (the API's bind and unbind call them):
each owns its write transaction. `bind` and `unbind` run inside the caller's; a lost race
raises `RaceLost`, and `Database.run_write` runs the whole transaction again, which then finds
the winner's binding.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses import repository as addresses
from pool.bindings import claim_repository as claims
from pool.bindings import one_trip_repository as one_trip
from pool.bindings import repository as bindings
from pool.bindings.events import bound_event_data, unbound_event_data
from pool.bindings.records import Binding, BindIntent, BindResult, Unbound
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.db import Database
from pool.kit.errors import InsufficientAddresses, NotFound, RaceLost
from pool.vocabulary import ADDRESS_BOUND, ADDRESS_UNBOUND, ParsedAddress, Protocol
from pool.webhooks.outbox import new_event_id, record_event


async def bind_address(
    db: Database,
    *,
    reference: str,
    protocol: Protocol,
    metadata: dict[str, Any] | None,
    actor: str,
    now: datetime | None = None,
) -> BindResult:
    """An address of the pool for `reference`: a new binding, or the one it already has."""
    if db.is_sqlite:
        intent = BindIntent(reference, protocol, metadata, actor, now or utc_now())
        created = await _bind_in_one_trip(db, intent)
        if created is not None:
            return BindResult(binding=created, created=True)
        # Nothing claimed: the reference holds a binding already, or the pool is dry. The
        # ordinary path below claims again and, finding nothing, reads which it is.

    async def work(conn: AsyncConnection) -> BindResult:
        return await bind(
            conn,
            reference=reference,
            protocol=protocol,
            metadata=metadata,
            actor=actor,
            now=now or utc_now(),
        )

    # On PostgreSQL a bind is one statement (bindings.claim_repository); on SQLite a transaction.
    return await db.run_write(work, single_statement=True)


async def _bind_in_one_trip(db: Database, intent: BindIntent) -> Binding | None:
    """SQLite: claim, binding, event and deliveries in one trip to the writer's thread
    (pool.kit.sqlite_trip); None when nothing was claimed, or a concurrent writer won."""
    event_id = new_event_id()
    try:
        return await db.write_in_one_trip(
            lambda trip: one_trip.claim_and_bind(trip, intent, event_id=event_id)
        )
    except RaceLost:
        return None


async def unbind_address(
    db: Database,
    *,
    actor: str,
    cooldown: timedelta,
    reference: str | None = None,
    protocol: Protocol | None = None,
    address: ParsedAddress | None = None,
) -> list[Unbound]:
    """Unbind by reference (every protocol), reference + protocol, or a pool address."""

    async def work(conn: AsyncConnection) -> list[Unbound]:
        address_id = None
        if address is not None:
            address_id = await addresses.find_address_id(
                conn, protocol=address.protocol, text=address.text
            )
            if address_id is None:
                raise NotFound(f"Address {address.text} is not in the pool")
        return await unbind(
            conn,
            actor=actor,
            now=utc_now(),
            cooldown=cooldown,
            reference=reference,
            protocol=protocol,
            address_id=address_id,
        )

    return await db.run_write(work)


async def bind(
    conn: AsyncConnection,
    *,
    reference: str,
    protocol: Protocol,
    metadata: dict[str, Any] | None,
    actor: str,
    now: datetime,
) -> BindResult:
    intent = BindIntent(reference, protocol, metadata, actor, now)
    if conn.dialect.name == "postgresql":
        created = await _bind_in_one_statement(conn, intent)
    else:
        created = await _bind_step_by_step(conn, intent)
    if created is not None:
        return BindResult(binding=created, created=True)
    return await _existing_binding(conn, protocol=protocol, reference=reference)


async def _existing_binding(
    conn: AsyncConnection, *, protocol: Protocol, reference: str
) -> BindResult:
    """Nothing was claimed: either the reference is bound already, or the pool is dry."""
    latest = await bindings.latest_binding(conn, protocol=protocol, reference=reference)
    if latest is not None and latest.binding.unbound_at is None:
        return BindResult(binding=latest.binding, created=False)
    raise InsufficientAddresses(protocol)


# Per protocol, the id just past the last never-used address this process claimed: where the
# next PostgreSQL claim starts looking (see pool.bindings.claim_repository). Correctness never
# depends on it; a stale value only costs one fallback scan.
_never_used_from: dict[str, int] = {}


async def _bind_in_one_statement(conn: AsyncConnection, intent: BindIntent) -> Binding | None:
    created = await claims.claim_and_bind(
        conn,
        intent=intent,
        bound_at_text=isoformat_z(intent.now),
        event_id=new_event_id(),
        never_used_from=_never_used_from.get(intent.protocol, 0),
    )
    if created is None:
        return None
    if created.never_used:
        _never_used_from[intent.protocol] = created.address_id + 1
    return _new_binding(intent, created.id, created.address)


async def _bind_step_by_step(conn: AsyncConnection, intent: BindIntent) -> Binding | None:
    """Used on SQLite, where the surrounding BEGIN IMMEDIATE makes this the only writer."""
    claimed = await addresses.claim_for_reference(
        conn, protocol=intent.protocol, reference=intent.reference, now=intent.now
    )
    if claimed is None:
        return None
    binding_id = await bindings.insert_binding(
        conn,
        reference=intent.reference,
        protocol=intent.protocol,
        address_id=claimed.id,
        metadata=intent.metadata,
        actor=intent.actor,
        now=intent.now,
    )
    new = _new_binding(intent, binding_id, claimed.text)
    await record_event(conn, type=ADDRESS_BOUND, data=bound_event_data(new), now=intent.now)
    return new


def _new_binding(intent: BindIntent, binding_id: int, address: str) -> Binding:
    return Binding(
        binding_id, intent.reference, intent.protocol, address, intent.metadata, intent.now
    )


async def unbind(
    conn: AsyncConnection,
    *,
    actor: str,
    now: datetime,
    cooldown: timedelta,
    reference: str | None = None,
    protocol: Protocol | None = None,
    address_id: int | None = None,
) -> list[Unbound]:
    """Unbind by reference (every protocol), reference + protocol, or address."""
    cooldown_until = now + cooldown
    ended = await bindings.end_active_bindings(
        conn,
        actor=actor,
        now=now,
        cooldown_until=cooldown_until,
        reference=reference,
        protocol=protocol,
        address_id=address_id,
    )
    if not ended:
        raise NotFound("No active binding found", code="REFERENCE_NOT_FOUND")
    unbound: list[Unbound] = []
    for ended_reference, ended_protocol, ended_address_id in ended:
        text = await addresses.release_address(
            conn,
            address_id=ended_address_id,
            reference=ended_reference,
            now=now,
            cooldown_until=cooldown_until,
        )
        result = Unbound(ended_reference, ended_protocol, text, cooldown_until)
        await record_event(
            conn, type=ADDRESS_UNBOUND, data=unbound_event_data(result, now), now=now
        )
        unbound.append(result)
    return unbound


def never_used_hint() -> dict[str, int]:
    """The per-protocol hint above, shared with orders' claim (pool.orders.allocation_repository):
    both claim from the front of the same index, so one hint serves both."""
    return _never_used_from
