"""Webhook endpoints and deliveries (docs/api.md, Webhook endpoints)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from api.answers import answers
from api.answers.webhooks import (
    Delivery,
    DeliveryList,
    EndpointDeleted,
    Replayed,
    Requeued,
    TestEvent,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)
from api.auth import require
from api.context import AppContext, context
from api.responses import ok, pagination
from api.schemas import Page, ReplayBody, WebhookEndpointBody, WebhookEndpointPatch, page_params
from pool.keys.repository import ApiKey
from pool.kit.clock import utc_now
from pool.kit.secret_box import secret_box
from pool.vocabulary import DELIVERY_STATUSES, TEST_EVENT
from pool.webhooks import endpoints as webhooks
from pool.webhooks import endpoints_repository as repo
from pool.webhooks import retries
from pool.webhooks.events_repository import insert_audit
from pool.webhooks.replay import ReplayRange, replay
from pool.webhooks.views import delivery_view, endpoint_view

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
Ctx = Annotated[AppContext, Depends(context)]
DELIVERY_STATUS_PATTERN = f"^({'|'.join(DELIVERY_STATUSES)})$"
Reader = Annotated[ApiKey, Depends(require("webhooks:read"))]
Writer = Annotated[ApiKey, Depends(require("webhooks:write"))]
# Replaying what receivers acknowledged is an operator's action (the console's scope).
Operator = Annotated[ApiKey, Depends(require("console:write"))]
EndpointId = Annotated[str, Path(max_length=32)]
# Sealing a new secret on PostgreSQL without ADDRPOOL_SECRET_KEY: 500 CONFIGURATION_ERROR.
NEEDS_SECRET_KEY = (500,)
DeliveryId = Annotated[str, Path(max_length=32)]


@router.post(
    "/endpoints",
    status_code=201,
    responses=answers(
        WebhookEndpointWithSecret, "EndpointCreatedAnswer", *NEEDS_SECRET_KEY, success=(201,)
    ),
)
async def create_endpoint(body: WebhookEndpointBody, ctx: Ctx, _key: Writer) -> Response:
    endpoint, secret = await webhooks.add_endpoint(
        ctx.db,
        ctx.settings,
        url=body.url,
        events=body.events,
        scheme=body.signature_scheme,
        description=body.description,
    )
    data = {**endpoint_view(endpoint), "secret": secret}
    return ok(data, status=201, message="Store the secret now: it is shown once")


@router.get("/endpoints", responses=answers(WebhookEndpointList, "EndpointListAnswer"))
async def list_endpoints(ctx: Ctx, _key: Reader) -> Response:
    async with ctx.db.read() as conn:
        endpoints = await webhooks.list_endpoints(conn)
    return ok({"endpoints": [endpoint_view(e) for e in endpoints]})


@router.get("/endpoints/{endpoint_id}", responses=answers(WebhookEndpoint, "EndpointAnswer"))
async def get_endpoint(ctx: Ctx, _key: Reader, endpoint_id: EndpointId) -> Response:
    async with ctx.db.read() as conn:
        return ok(endpoint_view(await webhooks.get_endpoint(conn, endpoint_id)))


@router.patch(
    "/endpoints/{endpoint_id}", responses=answers(WebhookEndpoint, "EndpointChangedAnswer", 409)
)
async def update_endpoint(
    body: WebhookEndpointPatch, ctx: Ctx, _key: Writer, endpoint_id: EndpointId
) -> Response:
    endpoint = await webhooks.change_endpoint(
        ctx.db,
        ctx.settings,
        endpoint_id=endpoint_id,
        url=body.url,
        events=body.events,
        scheme=body.signature_scheme,
        description=body.description,
        enabled=body.enabled,
    )
    return ok(endpoint_view(endpoint))


@router.delete(
    "/endpoints/{endpoint_id}", responses=answers(EndpointDeleted, "EndpointDeletedAnswer")
)
async def delete_endpoint(ctx: Ctx, _key: Writer, endpoint_id: EndpointId) -> Response:
    async with ctx.db.write() as conn:
        cancelled = await webhooks.delete_endpoint(conn, endpoint_id=endpoint_id, now=utc_now())
    return ok({"id": endpoint_id, "deleted": True, "cancelledDeliveries": cancelled})


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    responses=answers(WebhookEndpointWithSecret, "SecretRotatedAnswer", *NEEDS_SECRET_KEY),
)
async def rotate_secret(ctx: Ctx, _key: Writer, endpoint_id: EndpointId) -> Response:
    box = secret_box(ctx.settings)
    async with ctx.db.write() as conn:
        endpoint, secret = await webhooks.rotate_secret(
            conn, box, endpoint_id=endpoint_id, now=utc_now()
        )
    return ok({**endpoint_view(endpoint), "secret": secret}, message="Store the new secret now")


@router.post(
    "/endpoints/{endpoint_id}/test",
    status_code=202,
    responses=answers(TestEvent, "TestEventAnswer", 409, success=(202,)),
)
async def test_endpoint(ctx: Ctx, _key: Writer, endpoint_id: EndpointId) -> Response:
    async with ctx.db.write() as conn:
        event_id = await webhooks.send_test_event(conn, endpoint_id=endpoint_id, now=utc_now())
    return ok({"eventId": event_id, "type": TEST_EVENT}, status=202)


@router.get("/deliveries", responses=answers(DeliveryList, "DeliveryListAnswer"))
async def list_deliveries(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    endpoint_id: Annotated[str | None, Query(alias="endpointId", max_length=32)] = None,
    status: Annotated[str | None, Query(pattern=DELIVERY_STATUS_PATTERN)] = None,
    event_type: Annotated[str | None, Query(alias="eventType", max_length=64)] = None,
) -> Response:
    async with ctx.db.read() as conn:
        rows, total = await repo.list_deliveries(
            conn,
            endpoint_id=endpoint_id,
            status=status,
            event_type=event_type,
            offset=page.offset,
            limit=page.limit,
        )
    return ok(
        {
            "deliveries": [delivery_view(r) for r in rows],
            "pagination": pagination(page=page.page, limit=page.limit, total=total),
        }
    )


@router.post("/deliveries/retry-failed", responses=answers(Requeued, "RetryFailedAnswer"))
async def retry_failed(ctx: Ctx, _key: Writer) -> Response:
    async with ctx.db.write() as conn:
        count = await retries.retry_all_failed(conn, now=utc_now())
    return ok({"requeued": count})


@router.post("/deliveries/{delivery_id}/retry", responses=answers(Delivery, "RetryAnswer", 409))
async def retry_delivery(ctx: Ctx, _key: Writer, delivery_id: DeliveryId) -> Response:
    async with ctx.db.write() as conn:
        row = await retries.retry_delivery(conn, delivery_id, now=utc_now())
    return ok(delivery_view(row))


@router.post("/endpoints/{endpoint_id}/replay", responses=answers(Replayed, "ReplayAnswer", 404))
async def replay_events(
    body: ReplayBody, ctx: Ctx, key: Operator, endpoint_id: EndpointId
) -> Response:
    """The events of a range sent again to the endpoint, acknowledged ones included
    (docs/webhooks.md, Replaying events); audited with the reason."""
    chosen = ReplayRange(body.from_event_id, body.to_event_id, body.since, body.until)
    now = utc_now()
    async with ctx.db.write() as conn:
        replayed = await replay(conn, endpoint_id=endpoint_id, chosen=chosen, now=now)
        details = {
            "reason": body.reason,
            "requeued": replayed.requeued,
            "created": replayed.created,
        }
        await insert_audit(
            conn,
            actor=key.actor,
            action="webhook.replay",
            subject=endpoint_id,
            details=details,
            now=now,
        )
    data = {"requeued": replayed.requeued, "created": replayed.created, "total": replayed.total}
    return ok(data, message=f"{replayed.total} deliveries queued")
