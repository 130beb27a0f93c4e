"""Replay: the events of an id or time range sent again to one endpoint, the ones it already
acknowledged included (docs/webhooks.md, Replaying events).

A receiver that lost what it had acknowledged (a restored backup, a bug) gets them back without
waiting for anything to fail. Only the event types the endpoint subscribes to now are sent; its
existing deliveries of the range go back to pending (their attempt history kept), and events it
never had a delivery of (from before it subscribed) get one. Receivers dedupe by the event's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.errors import NotFound, ValidationFailed
from pool.webhooks import endpoints as webhook_endpoints
from pool.webhooks import replay_repository as repo

MAX_EVENTS = 100_000  # a wider replay is a few narrower ones


@dataclass(frozen=True, slots=True)
class ReplayRange:
    """By event ids (both included) or by creation time (`until` excluded); one of the two."""

    from_event_id: str | None = None
    to_event_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Replayed:
    requeued: int  # deliveries sent again
    created: int  # deliveries made for events the endpoint had none of

    @property
    def total(self) -> int:
        return self.requeued + self.created


async def replay(
    conn: AsyncConnection, *, endpoint_id: str, chosen: ReplayRange, now: datetime
) -> Replayed:
    await webhook_endpoints.get_endpoint(conn, endpoint_id)  # NotFound for an unknown one
    bounds = await _bounds(conn, chosen)
    if bounds is None:
        return Replayed(0, 0)
    first_seq, last_seq = bounds
    count = await repo.count_events(
        conn, endpoint_id=endpoint_id, first_seq=first_seq, last_seq=last_seq
    )
    if count > MAX_EVENTS:
        raise ValidationFailed(
            f"the range holds {count} events of this endpoint's types; replay at most "
            f"{MAX_EVENTS} at a time (a narrower range)"
        )
    requeued = await repo.requeue_range(
        conn, endpoint_id=endpoint_id, first_seq=first_seq, last_seq=last_seq, now=now
    )
    created = await repo.insert_missing(
        conn, endpoint_id=endpoint_id, first_seq=first_seq, last_seq=last_seq, now=now
    )
    return Replayed(requeued, created)


async def _bounds(conn: AsyncConnection, chosen: ReplayRange) -> tuple[int, int] | None:
    by_ids = chosen.from_event_id is not None or chosen.to_event_id is not None
    by_time = chosen.since is not None or chosen.until is not None
    if by_ids == by_time:
        raise ValidationFailed(
            "give an event id range (fromEventId, toEventId) or a time range (since, until)"
        )
    if by_time:
        return await repo.seq_bounds(conn, since=chosen.since, until=chosen.until)
    if chosen.from_event_id is None or chosen.to_event_id is None:
        raise ValidationFailed("an event id range needs both fromEventId and toEventId")
    first = await repo.seq_of(conn, chosen.from_event_id)
    last = await repo.seq_of(conn, chosen.to_event_id)
    for event_id, seq in ((chosen.from_event_id, first), (chosen.to_event_id, last)):
        if seq is None:
            raise NotFound(f"No event {event_id}", code="EVENT_NOT_FOUND")
    if first is None or last is None:  # pragma: no cover - refused just above
        return None
    return (first, last) if first <= last else (last, first)
