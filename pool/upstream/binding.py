"""Upstream mode's binds and unbinds: PayIn allocates, addrpool checks and records.

The address PayIn returns must be one we imported for that protocol — otherwise funds would go
to keys we do not hold: the bind is refused to our caller, nothing is recorded as usable, and
a critical alert fires. An accepted binding is recorded exactly as a local bind records it
(address bound, binding row, `deposit.address_bound` event), so statistics, alerts and the
watcher work unchanged. PayIn is the authority on who holds what: a local record that
disagrees (a commit that failed after PayIn answered, an unbind we missed) is brought in line
on the next bind or unbind of that reference, which is what makes retries converge.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses import repository as addresses
from pool.bindings import repository as bindings
from pool.bindings import service as allocation
from pool.bindings.events import bound_event_data
from pool.bindings.records import Binding, BindResult
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import AddrpoolError, NotFound, UpstreamAddressUnknown
from pool.upstream.address_alert import alert_unusable_address
from pool.upstream.client import UpstreamClient
from pool.vocabulary import (
    ADDRESS_BOUND,
    AddressParser,
    ParsedAddress,
    Protocol,
)
from pool.webhooks.outbox import record_event

log = logging.getLogger("addrpool.upstream")


async def bind_through_upstream(
    db: Database,
    client: UpstreamClient,
    parse: AddressParser,
    *,
    reference: str,
    protocol: Protocol,
    metadata: dict[str, Any] | None,
    actor: str,
    cooldown: timedelta,
) -> BindResult:
    body: dict[str, Any] = {"depositReference": reference, "protocol": protocol}
    if metadata is not None:
        body["metadata"] = metadata
    status, data = await client.bind(body)
    parsed, address_id = await _our_address(db, parse, protocol, data.get("address"))
    if address_id is None:
        shown = data.get("address")
        where = {"protocol": protocol, "address": str(shown)}
        await alert_unusable_address(
            db,
            protocol=protocol,
            shown=shown,
            message="PayIn returned an address that is not in our pool",
            details={"depositReference": reference, **where},
            log_extra={"reference": reference, **where},
        )
        raise UpstreamAddressUnknown(
            f"PayIn returned {shown!r} for {protocol}, which is not in our pool: "
            "refused (funds sent there would reach keys we do not hold)"
        )

    async def record(conn: AsyncConnection) -> BindResult:
        return await _record_binding(
            conn,
            parsed=parsed,
            address_id=address_id,
            reference=reference,
            metadata=metadata,
            actor=actor,
            now=utc_now(),
            cooldown=cooldown,
        )

    recorded = await db.run_write(record)
    # PayIn's word decides new vs existing: a binding we record late is not new to PayIn.
    return BindResult(binding=recorded.binding, created=status == 201)


async def _our_address(
    db: Database, parse: AddressParser, protocol: Protocol, shown: Any
) -> tuple[ParsedAddress, int | None]:
    try:
        parsed = parse(str(shown))
    except AddrpoolError:
        return ParsedAddress(protocol, str(shown), ""), None
    async with db.read() as conn:
        found = await addresses.find_address_id(conn, protocol=protocol, text=parsed.text)
    return parsed, found


async def _record_binding(
    conn: AsyncConnection,
    *,
    parsed: ParsedAddress,
    address_id: int,
    reference: str,
    metadata: dict[str, Any] | None,
    actor: str,
    now: datetime,
    cooldown: timedelta,
) -> BindResult:
    protocol = parsed.protocol
    active = await bindings.active_bindings(conn, reference=reference, protocol=protocol)
    if active and active[0].address_id == address_id:
        return BindResult(binding=active[0].binding, created=False)
    # Whatever we hold that PayIn no longer does: the reference's old address, or this
    # address under another reference. Unbound here as an unbind would, events included.
    if active:
        stale = _Stale(reference=reference, protocol=protocol)
        await _release_stale(conn, stale, actor=actor, now=now, cooldown=cooldown)
    if await bindings.holds_address(conn, address_id=address_id):
        stale = _Stale(address_id=address_id)
        await _release_stale(conn, stale, actor=actor, now=now, cooldown=cooldown)
    await addresses.mark_bound(conn, address_id=address_id, reference=reference)
    binding_id = await bindings.insert_binding(
        conn,
        reference=reference,
        protocol=protocol,
        address_id=address_id,
        metadata=metadata,
        actor=actor,
        now=now,
    )
    new = Binding(binding_id, reference, protocol, parsed.text, metadata, now)
    await record_event(conn, type=ADDRESS_BOUND, data=bound_event_data(new), now=now)
    return BindResult(binding=new, created=True)


@dataclass(frozen=True, slots=True)
class _Stale:
    reference: str | None = None
    protocol: Protocol | None = None
    address_id: int | None = None


async def _release_stale(
    conn: AsyncConnection, stale: _Stale, *, actor: str, now: datetime, cooldown: timedelta
) -> None:
    try:
        await allocation.unbind(
            conn,
            actor=actor,
            now=now,
            cooldown=cooldown,
            reference=stale.reference,
            protocol=stale.protocol,
            address_id=stale.address_id,
        )
    except NotFound:
        return
    log.warning("local binding brought in line with PayIn", extra={"stale": str(stale)})


async def unbind_through_upstream(
    db: Database,
    client: UpstreamClient,
    *,
    body: dict[str, Any],
    address_id: int | None,
    actor: str,
    cooldown: timedelta,
) -> dict[str, Any]:
    """PayIn first; then ours, whatever PayIn said (a 404 there means nothing is held)."""
    try:
        data = await client.unbind(body)
    except NotFound:
        await _unbind_locally(db, body, address_id, actor, cooldown)
        raise
    await _unbind_locally(db, body, address_id, actor, cooldown)
    return data


async def _unbind_locally(
    db: Database, body: dict[str, Any], address_id: int | None, actor: str, cooldown: timedelta
) -> None:
    async def work(conn: AsyncConnection) -> None:
        with contextlib.suppress(NotFound):  # nothing held here either
            await allocation.unbind(
                conn,
                actor=actor,
                now=utc_now(),
                cooldown=cooldown,
                reference=body.get("depositReference"),
                protocol=body.get("protocol"),
                address_id=address_id,
            )

    await db.run_write(work)
