"""The event feed's answer (api/routes/events.py)."""

from __future__ import annotations

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from api.answers import Answer


class EventData(Answer):
    """What the event's type carries (docs/webhooks.md, Events and delivery): a deposit, an
    order (with `transfer` for some types), a binding, the pool's numbers, a test's message.
    Listed: the fields that name its subject, each there when the type has it."""

    depositId: str | None | SkipJsonSchema[None] = None  # noqa: N815
    depositReference: str | None | SkipJsonSchema[None] = None  # noqa: N815
    orderId: str | None | SkipJsonSchema[None] = None  # noqa: N815
    orderReference: str | None | SkipJsonSchema[None] = None  # noqa: N815
    protocol: str | None | SkipJsonSchema[None] = None
    address: str | None | SkipJsonSchema[None] = None
    status: str | None | SkipJsonSchema[None] = None


class FeedEvent(Answer):
    """One event, exactly the body of its webhook delivery."""

    id: str = Field(description="evt_…, the webhook's X-PayIn-Event-Id: dedupe by it")
    type: str
    createdAt: str  # noqa: N815
    data: EventData


class EventPage(Answer):
    events: list[FeedEvent]
    nextCursor: str = Field(  # noqa: N815
        description="pass as `after` next time; store it once the events are handled"
    )
    hasMore: bool = Field(  # noqa: N815
        description="more events are ready now: ask again at once with nextCursor"
    )
