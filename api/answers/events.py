"""The event feed's answer (api/routes/events.py)."""

from __future__ import annotations

from pydantic import Field

from api.answers import Answer, FreeForm


class FeedEvent(Answer):
    """One event, as the body of its webhook delivery (docs/webhooks.md)."""

    id: str = Field(description="evt_…: the same as X-PayIn-Event-Id; dedupe by it")
    type: str
    createdAt: str  # noqa: N815
    data: FreeForm = Field(description="as the event type's webhook carries it")


class EventPage(Answer):
    events: list[FeedEvent]
    nextCursor: str = Field(  # noqa: N815
        description="pass as `after` next time; store it once the events are handled"
    )
    hasMore: bool = Field(  # noqa: N815
        description="more events are ready now: ask again at once with nextCursor"
    )
