"""The transactional outbox (Invariant 8): an event is written in the transaction that caused it."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.repository.events import insert_event

ADDRESS_BOUND = "deposit.address_bound"
ADDRESS_UNBOUND = "deposit.address_unbound"


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


async def record_event(
    conn: AsyncConnection, *, type: str, data: dict[str, Any], now: datetime
) -> str:
    event_id = new_event_id()
    await insert_event(conn, event_id=event_id, type=type, data=data, now=now)
    return event_id
