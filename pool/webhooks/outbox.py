"""The transactional outbox (invariant 8, docs/design.md): an event is written in the
transaction that caused it."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.webhooks.events_repository import insert_event


class _EventIds:
    """`evt_` + 24 hex: 48 bits of milliseconds since the epoch, then 48 bits that start at a
    random value each millisecond and count up within it, so ids are unique in a process,
    unguessable across processes, and ascending.

    Ascending because the event table's unique index on `id` takes a catch-up's thousands of
    events a second: random ids scatter them over the whole index, every one dirtying another
    page, and inserts and commits take several times as long (docs/performance.md).
    """

    _TAIL = 1 << 48
    _START_BITS = 47  # a random start below _TAIL >> 1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._millis = 0
        self._tail = 0

    def new(self) -> str:
        millis = time.time_ns() // 1_000_000
        with self._lock:
            if millis > self._millis:
                # Room to count up: the random start stays in the lower half of the tail.
                # randbits(47) is randbelow(2**47) in one draw (randbelow draws 48 bits and
                # redraws half the time).
                self._millis, self._tail = millis, secrets.randbits(self._START_BITS)
            else:  # same millisecond, or the clock stepped back: keep ascending
                self._tail += 1
                if self._tail >= self._TAIL:
                    self._millis, self._tail = self._millis + 1, 0
            millis, tail = self._millis, self._tail
        return f"evt_{millis:012x}{tail:012x}"


new_event_id = _EventIds().new


async def record_event(
    conn: AsyncConnection, *, type: str, data: dict[str, Any], now: datetime
) -> str:
    event_id = new_event_id()
    await insert_event(conn, event_id=event_id, type=type, data=data, now=now)
    return event_id
