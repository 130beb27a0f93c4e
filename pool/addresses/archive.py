"""Archiving: an operator retires an address (never allocated again, still watched)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.repository import find_address_id, set_archived
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import Conflict, NotFound
from pool.vocabulary import ALLOCATED, BOUND, EVM, TRON, ParsedAddress, Protocol
from pool.webhooks.events_repository import insert_audit


def protocol_by_shape(address: str) -> Protocol:
    """The protocol can be left out: an address's shape says which it is."""
    return EVM if address.lower().startswith("0x") else TRON


async def archive_address(
    db: Database, parsed: ParsedAddress, *, archived: bool, actor: str, reason: str | None = None
) -> None:
    """Archive (or, `archived=False`, make available again) one address, in its own write;
    `reason` goes to the audit log with it."""

    async def work(conn: AsyncConnection) -> None:
        await change_archived(
            conn, parsed=parsed, archived=archived, actor=actor, now=utc_now(), reason=reason
        )

    await db.run_write(work)


async def change_archived(
    conn: AsyncConnection,
    *,
    parsed: ParsedAddress,
    archived: bool,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    address_id = await find_address_id(conn, protocol=parsed.protocol, text=parsed.text)
    if address_id is None:
        raise NotFound(f"Address {parsed.text} is not in the pool")
    previous = await set_archived(conn, address_id=address_id, archived=archived)
    if previous == BOUND:
        raise Conflict(
            f"Address {parsed.text} is bound; unbind it before archiving", code="ADDRESS_BOUND"
        )
    if previous == ALLOCATED:
        raise Conflict(
            f"Address {parsed.text} is allocated to a pending order; it can be archived once "
            "the order ends",
            code="ADDRESS_ALLOCATED",
        )
    action = "address.archive" if archived else "address.unarchive"
    details = None if reason is None else {"reason": reason, "via": "console"}
    await insert_audit(
        conn, actor=actor, action=action, subject=parsed.text, details=details, now=now
    )
