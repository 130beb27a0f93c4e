"""PostgreSQL's bind in one statement: claim an address, insert the binding and its event.

The generic path (`pool.bindings.service`) needs four statements; on PostgreSQL a data-modifying CTE
does it in one round trip, which is what lets a bind cost about as much as the bare claim.
The semantics are the same and both paths run the same tests:
- nothing happens if the reference already has an active binding (the caller then reads it);
- the reference's previous address comes back to it if it is still free (invariant 2,
  docs/design.md);
- otherwise the next free address: never-used first, then the longest-recycled, skipping rows
  that concurrent claims hold. COALESCE evaluates a sub-select (an InitPlan, run on first
  use) only when the ones before it found nothing, so it then locks no other row.

Why `never_used_from`: every claim leaves a dead entry at the front of the claim index until
VACUUM removes it, and a scan from the front steps over all of them: the pages read per claim
grow and binds slow down within seconds of binding (docs/performance.md, Bind). So the
never-used addresses are scanned from just past the last one this process claimed (a hint
kept by the caller). The hint is only a starting point: when nothing is found from it (the
never-used ones are gone, or a rolled-back claim left one behind it) the full scan runs, so
no address is ever missed; at worst a rolled-back one is handed out a little later.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.bindings.events import bound_event_sql
from pool.bindings.records import BindIntent
from pool.kit.errors import RaceLost
from pool.kit.types import UTCDateTime
from pool.vocabulary import ADDRESS_BOUND
from pool.webhooks.events_repository import fan_out

CLAIM_AND_BIND = text(
    f"""
WITH candidate AS (
    SELECT COALESCE(
        (SELECT a.id FROM address a
          WHERE a.id = (SELECT b.address_id FROM binding b
                         WHERE b.protocol = :protocol AND b.deposit_reference = :reference
                         ORDER BY b.bound_at DESC, b.id DESC LIMIT 1)
            AND a.status = 'available' AND a.last_reference = :reference
          FOR UPDATE),
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
    ) AS id
),
claimed AS (
    UPDATE address SET status = 'bound', last_reference = :reference
     WHERE id = (SELECT id FROM candidate) AND status = 'available'
       AND NOT EXISTS (SELECT 1 FROM binding
                        WHERE protocol = :protocol AND deposit_reference = :reference
                          AND unbound_at IS NULL)
    RETURNING id, address, recycled_at IS NULL AS never_used
),
new_binding AS (
    INSERT INTO binding (deposit_reference, protocol, address_id, metadata, bound_at, bound_by)
    SELECT :reference, :protocol, claimed.id, CAST(:metadata AS json), :now, :actor FROM claimed
    RETURNING id
),
new_event AS (
    INSERT INTO event (id, type, data, created_at)
    SELECT :event_id, '{ADDRESS_BOUND}', {bound_event_sql()}, :now
      FROM claimed
    RETURNING seq, type
),
new_deliveries AS (
    -- Invariant 8: the event's deliveries are written with it, one per subscribed endpoint.
{fan_out("postgresql", events="new_event ev", now=":now")}
)
SELECT new_binding.id, claimed.address, claimed.id, claimed.never_used
  FROM new_binding, claimed
"""  # noqa: S608 - constant SQL, values bound
).bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True, slots=True)
class NewBinding:
    id: int
    address: str
    address_id: int
    never_used: bool


async def claim_and_bind(
    conn: AsyncConnection,
    *,
    intent: BindIntent,
    bound_at_text: str,
    event_id: str,
    never_used_from: int,
) -> NewBinding | None:
    """The new binding, or None: the reference is already bound, or nothing is free."""
    metadata = intent.metadata
    parameters = {
        "reference": intent.reference,
        "protocol": intent.protocol,
        "metadata": None if metadata is None else orjson.dumps(metadata).decode(),
        "actor": intent.actor,
        "now": intent.now,
        "bound_at_text": bound_at_text,
        "event_id": event_id,
        "never_used_from": never_used_from,
    }
    try:
        row = (await conn.execute(CLAIM_AND_BIND, parameters)).first()
    except IntegrityError as exc:
        raise RaceLost("a concurrent bind won; retrying") from exc
    if row is None:
        return None
    return NewBinding(id=row[0], address=row[1], address_id=row[2], never_used=row[3])
