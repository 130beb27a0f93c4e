"""`GET /api/v1/events`: the event feed receivers pull (docs/api.md, Events feed;
docs/webhooks.md, Recovering by pulling)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from api.answers import answers
from api.answers.events import EventPage
from api.auth import require
from api.context import AppContext, context
from api.responses import ok
from pool.keys.repository import ApiKey
from pool.kit.clock import isoformat_z
from pool.webhooks.feed import (
    DEFAULT_LIMIT,
    FEED_TYPES,
    MAX_LIMIT,
    MAX_WAIT_SECONDS,
    FeedPage,
    FeedQuery,
    decode_cursor,
    encode_cursor,
    feed_for,
    parse_types,
)
from pool.webhooks.feed_repository import FeedEvent

router = APIRouter(prefix="/api/v1/events", tags=["events"])
Ctx = Annotated[AppContext, Depends(context)]
# The events are what the webhooks carry: whoever may read the webhooks' deliveries may pull them.
Reader = Annotated[ApiKey, Depends(require("webhooks:read"))]


@router.get("", responses=answers(EventPage, "EventPageAnswer"))
async def list_events(
    ctx: Ctx,
    _key: Reader,
    after: Annotated[
        str | None,
        Query(
            max_length=64,
            description="a nextCursor from an earlier answer; absent: from the first event",
        ),
    ] = None,
    types: Annotated[
        str | None,
        Query(max_length=1000, description="comma-separated: " + ", ".join(FEED_TYPES)),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            allow_inf_nan=False,
            description="seconds to wait for an event when none is ready (long poll)",
        ),
    ] = 0,
) -> Response:
    query = FeedQuery(
        after=0 if after is None else decode_cursor(after), types=parse_types(types), limit=limit
    )
    feed = feed_for(ctx.db)
    page = await (feed.wait_for(query, seconds=wait) if wait > 0 else feed.read(query))
    return ok(page_view(page))


def page_view(page: FeedPage) -> dict[str, Any]:
    return {
        "events": [event_view(e) for e in page.events],
        "nextCursor": encode_cursor(page.next_after),
        "hasMore": page.has_more,
    }


def event_view(event: FeedEvent) -> dict[str, Any]:
    """The webhook body's fields (pool/webhooks/delivery.py sends the same)."""
    return {
        "id": event.id,
        "type": event.type,
        "createdAt": isoformat_z(event.created_at),
        "data": event.data,
    }
