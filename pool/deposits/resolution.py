"""An operator's decision on a deposit nobody was credited with (docs/operations.md,
Unattributed, late and mismatched deposits).

Which deposits: an unattributed one (no binding, no order: invariant 4's never-bound or
archived address), an order's `late` or `mismatch` transfer (the order does not count it), and
for `resolve` also a binding's `late` one (credited to the address's last reference).

- `attribute` credits the deposit to a reference's active binding on its protocol: it gets the
  `deposit.*` events a bound deposit would have had by now — `deposit.pending`, then, if it is
  already confirmed, `deposit.confirmed` (the order a deposit recorded confirmed at once gets
  them in). A pending one is confirmed later by the watcher's ordinary pass, which announces
  attributed deposits (pool.deposits.ledger.confirm_deposits). An order's late or mismatched
  transfer keeps its order and role: its `order.*` notice is the order's side, the
  `deposit.*` events the reference's credit.
- `resolve` records `refunded` or `ignored` with a note and sends nothing.

Either resolves the deposit's `unattributed_deposit` alert and writes an audit record, in
the transaction of the change (invariant 8). A decision is final: the same call again is a
no-op (`changed` False), a different one a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts.repository import resolve_alert
from pool.deposits.payloads import as_pending, deposit_payload
from pool.deposits.repository import DepositRow, deposits_by_ids
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import Conflict, NotFound, RaceLost, ValidationFailed
from pool.kit.secret_detection import find_secrets
from pool.kit.tables import address, binding, deposit
from pool.vocabulary import (
    ATTRIBUTED,
    CONFIRMED,
    DEPOSIT_CONFIRMED,
    DEPOSIT_PENDING,
    DUST,
    PAYMENT,
    PENDING,
    RESOLUTION_OUTCOMES,
    REVERTED,
    UNATTRIBUTED_DEPOSIT,
)
from pool.webhooks.events_repository import insert_audit, insert_events
from pool.webhooks.outbox import new_event_id

NOTE_MAX = 1000  # deposit.resolution_note


@dataclass(frozen=True, slots=True)
class Resolution:
    """The deposit as it now stands, whether this call changed it, and the events it wrote."""

    deposit: DepositRow
    changed: bool
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Current:
    """What decides whether a deposit may be attributed or resolved."""

    protocol: str
    status: str
    binding_id: int | None
    reference: str | None
    late: bool
    order_id: str | None
    order_role: str | None
    resolution: str | None


async def attribute(
    db: Database, deposit_id: str, reference: str, actor: str, reason: str, *, via: str = "api"
) -> Resolution:
    """Credit an unclaimed deposit to `reference` (its active binding on the deposit's
    protocol) and send the `deposit.*` events it would have had by now."""
    reason = _note(reason, "reason")
    now = utc_now()

    async def work(conn: AsyncConnection) -> Resolution:
        current = await _current(conn, deposit_id)
        if current.resolution == ATTRIBUTED and current.reference == reference:
            return Resolution(await _row(conn, deposit_id), changed=False)
        _check_attributable(deposit_id, current)
        binding_id = await _active_binding(conn, current.protocol, reference)
        status = await _mark(
            conn, deposit_id, ATTRIBUTED, reason, actor, now, binding_id=binding_id
        )
        row = await _row(conn, deposit_id)
        events = await _announce(conn, row, status, now)
        await resolve_alert(conn, subject=f"{UNATTRIBUTED_DEPOSIT}:{deposit_id}", now=now)
        details = {
            "depositReference": reference,
            "protocol": current.protocol,
            "reason": reason,
            "previousOrderRole": current.order_role,
            "events": list(events),
            "via": via,
        }
        await insert_audit(
            conn,
            actor=actor,
            action="deposit.attribute",
            subject=deposit_id,
            details=details,
            now=now,
        )
        return Resolution(row, changed=True, events=events)

    return await db.run_write(work)


async def resolve(
    db: Database, deposit_id: str, outcome: str, actor: str, note: str, *, via: str = "api"
) -> Resolution:
    """Record that an unclaimed, late or mismatched deposit was refunded or is ignored; no
    event is sent."""
    if outcome not in RESOLUTION_OUTCOMES:
        raise ValidationFailed(f"outcome must be one of {', '.join(RESOLUTION_OUTCOMES)}")
    note = _note(note, "note")
    now = utc_now()

    async def work(conn: AsyncConnection) -> Resolution:
        current = await _current(conn, deposit_id)
        if current.resolution == outcome:
            return Resolution(await _row(conn, deposit_id), changed=False)
        _check_resolvable(deposit_id, current)
        await _mark(conn, deposit_id, outcome, note, actor, now)
        await resolve_alert(conn, subject=f"{UNATTRIBUTED_DEPOSIT}:{deposit_id}", now=now)
        details = {"outcome": outcome, "note": note, "orderRole": current.order_role, "via": via}
        await insert_audit(
            conn,
            actor=actor,
            action="deposit.resolve",
            subject=deposit_id,
            details=details,
            now=now,
        )
        return Resolution(await _row(conn, deposit_id), changed=True)

    return await db.run_write(work)


def _note(text: str, field: str) -> str:
    """Who decided is the key; why is this text, kept on the row and in the audit log."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > NOTE_MAX:
        raise ValidationFailed(f"{field} is required: 1 to {NOTE_MAX} characters")
    if next(find_secrets(cleaned), None) is not None:  # invariant 9: never stored, never echoed
        raise ValidationFailed(
            f"{field} holds what looks like a private key: addrpool never stores one",
            code="PRIVATE_KEY_REFUSED",
        )
    return cleaned


async def _current(conn: AsyncConnection, deposit_id: str) -> _Current:
    """The deposit's state, its row locked (PostgreSQL) so that a confirmation or another
    operator's call in flight is waited for and then seen."""
    statement = (
        select(
            address.c.protocol,
            deposit.c.status,
            deposit.c.binding_id,
            binding.c.deposit_reference,
            deposit.c.late,
            deposit.c.order_id,
            deposit.c.order_role,
            deposit.c.resolution,
        )
        .select_from(
            deposit.join(address, address.c.id == deposit.c.address_id).outerjoin(
                binding, binding.c.id == deposit.c.binding_id
            )
        )
        .where(deposit.c.id == deposit_id)
        .with_for_update(of=deposit)
    )
    found = (await conn.execute(statement)).first()
    if found is None:
        raise NotFound(f"Deposit {deposit_id} not found", code="DEPOSIT_NOT_FOUND")
    return _Current(*found)


def _check_on_chain(deposit_id: str, current: _Current) -> None:
    if current.status == REVERTED:
        raise Conflict(
            f"Deposit {deposit_id} was reverted: its block left the chain",
            code="DEPOSIT_REVERTED",
        )
    if current.status == DUST:
        raise Conflict(
            f"Deposit {deposit_id} is dust (below the token's minimum): not a deposit",
            code="DEPOSIT_DUST",
        )


def _check_unclaimed(deposit_id: str, current: _Current, *, late_binding_ok: bool) -> None:
    """Refuse a deposit somebody is already credited with."""
    if current.resolution == ATTRIBUTED or (
        current.binding_id is not None and not (late_binding_ok and current.late)
    ):
        raise Conflict(
            f"Deposit {deposit_id} is already credited to reference {current.reference}",
            code="DEPOSIT_ALREADY_ATTRIBUTED",
        )
    if current.resolution is not None:
        raise Conflict(
            f"Deposit {deposit_id} was already resolved as {current.resolution}",
            code="DEPOSIT_RESOLVED",
        )
    if current.order_role == PAYMENT:
        raise Conflict(
            f"Deposit {deposit_id} is a payment of order {current.order_id}",
            code="DEPOSIT_ORDER_PAYMENT",
        )


def _check_attributable(deposit_id: str, current: _Current) -> None:
    _check_unclaimed(deposit_id, current, late_binding_ok=False)
    _check_on_chain(deposit_id, current)


def _check_resolvable(deposit_id: str, current: _Current) -> None:
    _check_unclaimed(deposit_id, current, late_binding_ok=True)
    _check_on_chain(deposit_id, current)


async def _active_binding(conn: AsyncConnection, protocol: str, reference: str) -> int:
    found = await conn.scalar(
        select(binding.c.id).where(
            binding.c.protocol == protocol,
            binding.c.deposit_reference == reference,
            binding.c.unbound_at.is_(None),
        )
    )
    if found is None:
        raise NotFound(
            f"Reference {reference} has no active {protocol} binding "
            "(bind it first, then attribute)",
            code="REFERENCE_NOT_BOUND",
        )
    return int(found)


async def _mark(
    conn: AsyncConnection,
    deposit_id: str,
    resolution: str,
    note: str,
    actor: str,
    now: datetime,
    *,
    binding_id: int | None = None,
) -> str:
    """Write the decision on a still unresolved row; returns its status as written (a
    confirmation committed meanwhile is seen here, not lost)."""
    values: dict[str, Any] = {
        "resolution": resolution,
        "resolution_note": note,
        "resolved_by": actor,
        "resolved_at": now,
    }
    statement = update(deposit).where(deposit.c.id == deposit_id, deposit.c.resolution.is_(None))
    if binding_id is not None:
        values["binding_id"] = binding_id
        statement = statement.where(
            deposit.c.binding_id.is_(None), deposit.c.status.in_((PENDING, CONFIRMED))
        )
    written = (await conn.execute(statement.values(**values).returning(deposit.c.status))).first()
    if written is None:
        raise RaceLost("The deposit changed meanwhile")  # run_write tries again from the start
    return str(written[0])


async def _row(conn: AsyncConnection, deposit_id: str) -> DepositRow:
    return (await deposits_by_ids(conn, [deposit_id]))[deposit_id]


async def _announce(
    conn: AsyncConnection, row: DepositRow, status: str, now: datetime
) -> tuple[str, ...]:
    """`deposit.pending`, and `deposit.confirmed` after it when already confirmed: what a bound
    deposit recorded at this depth would have sent (pool.deposits.ledger, `_insert_new`)."""
    payload = deposit_payload(row)
    announcements: list[tuple[str, dict[str, Any]]]
    if status == PENDING:
        announcements = [(DEPOSIT_PENDING, payload)]
    else:
        announcements = [(DEPOSIT_PENDING, as_pending(payload)), (DEPOSIT_CONFIRMED, payload)]
    events = [(new_event_id(), event_type, data) for event_type, data in announcements]
    await insert_events(conn, events=events, now=now)
    return tuple(event_type for event_type, _ in announcements)
