"""Archiving: an operator retires an address (never allocated again, still watched)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.repository import find_address_id, set_archived
from pool.kit.errors import Conflict, NotFound
from pool.vocabulary import BOUND, ParsedAddress
from pool.webhooks.events_repository import insert_audit


async def change_archived(
    conn: AsyncConnection, *, parsed: ParsedAddress, archived: bool, actor: str, now: datetime
) -> None:
    address_id = await find_address_id(conn, protocol=parsed.protocol, text=parsed.text)
    if address_id is None:
        raise NotFound(f"Address {parsed.text} is not in the pool")
    previous = await set_archived(conn, address_id=address_id, archived=archived)
    if previous == BOUND:
        raise Conflict(
            f"Address {parsed.text} is bound; unbind it before archiving", code="ADDRESS_BOUND"
        )
    action = "address.archive" if archived else "address.unarchive"
    await insert_audit(conn, actor=actor, action=action, subject=parsed.text, details=None, now=now)
