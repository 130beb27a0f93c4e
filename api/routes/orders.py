"""PayIn's orders API (docs/api.md, Orders): a pool address for one payment of a known amount.

Route order matters: `/stats` and `/by-reference/{ref}` are declared before `/{orderId}`, which
would otherwise take them for an order id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.answers import answers
from api.answers.orders import Order, OrderList, OrderStats
from api.auth import require
from api.context import AppContext, context
from api.errors import UPSTREAM_STATUSES
from api.order_schemas import OrderRequest
from api.responses import ok, pagination
from api.schemas import REFERENCE_PATTERN, Page, comma_choices, page_params
from chains.codec import address_parser
from pool.keys.repository import ApiKey
from pool.kit.errors import InsufficientAddresses, ValidationFailed
from pool.orders import service as orders
from pool.orders.intake import resolve
from pool.orders.listing_repository import OrderFilters, list_orders
from pool.orders.payloads import order_payloads
from pool.orders.records import CreatedOrder, OrderAsk
from pool.orders.stats import order_stats
from pool.upstream.orders import cancel_order_through_upstream, create_order_through_upstream
from pool.vocabulary import ORDER_STATUSES

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("orders:read"))]
Writer = Annotated[ApiKey, Depends(require("orders:write"))]
ORDER_ID_PATTERN = r"^ord_[A-Za-z0-9]{1,60}$"
OrderId = Annotated[str, Path(alias="orderId", pattern=ORDER_ID_PATTERN, max_length=64)]


def base_url(ctx: AppContext, request: Request) -> str:
    """Where payers reach this server: ADDRPOOL_PUBLIC_URL, else this request's own scheme and
    host (behind a proxy, uvicorn takes the scheme from X-Forwarded-Proto when the proxy
    connects from an address in FORWARDED_ALLOW_IPS, 127.0.0.1 by default; docs/api.md)."""
    return ctx.settings.public_url or str(request.base_url).rstrip("/")


@router.post(
    "",
    status_code=201,
    responses=answers(Order, "OrderAnswer", 409, *UPSTREAM_STATUSES, success=(201, 200)),
)
async def create_order(body: OrderRequest, request: Request, ctx: Ctx, key: Writer) -> Response:
    ask = OrderAsk(
        reference=body.order_reference,
        amount=body.amount,
        currency=body.currency,
        chain_id=body.chain_id,
        metadata=body.metadata,
        success_url=body.success_url,
        cancel_url=body.cancel_url,
        window_minutes=body.payment_window_minutes,
        grace_minutes=body.grace,
    )
    chain = ctx.order_chains.get(body.chain_id)
    try:
        result = await _create(body, ask, ctx, base_url(ctx, request), key.actor)
    except InsufficientAddresses:
        if chain is not None:
            ctx.pool_alerts.changed(chain.protocol)
        raise
    if result.created:
        ctx.pool_alerts.changed(result.order["protocol"])  # evaluated off this request
        return ok(result.order, status=201, message="Order created")
    return ok(result.order, status=200, message="Order already exists; existing order returned")


async def _create(
    body: OrderRequest, ask: OrderAsk, ctx: AppContext, base: str, actor: str
) -> CreatedOrder:
    if ctx.upstream is None:
        return await orders.create_order(
            ctx.db,
            ask=ask,
            chains=ctx.order_chains,
            settings=ctx.settings.orders,
            allow_http_urls=ctx.settings.webhook_allow_private,
            base_url=base,
            actor=actor,
        )
    # Upstream mode: checked here, created at PayIn, its answer checked and recorded here.
    resolved = resolve(
        ask,
        chains=ctx.order_chains,
        settings=ctx.settings.orders,
        allow_http=ctx.settings.webhook_allow_private,
    )
    return await create_order_through_upstream(
        ctx.db,
        ctx.upstream,
        address_parser(resolved.chain.protocol),
        body=body.model_dump(by_alias=True, exclude_none=True),
        resolved=resolved,
        base_url=base,
        actor=actor,
    )


@router.get("/stats", responses=answers(OrderStats, "OrderStatsAnswer"))
async def get_order_stats(ctx: Ctx, _key: Reader) -> Response:
    async with ctx.db.read() as conn:
        return ok(await order_stats(conn))


@router.get(
    "/by-reference/{orderReference}", responses=answers(Order, "OrderByReferenceAnswer", 404)
)
async def get_order_by_reference(
    ctx: Ctx,
    _key: Reader,
    order_reference: Annotated[
        str, Path(alias="orderReference", pattern=REFERENCE_PATTERN, max_length=255)
    ],
) -> Response:
    async with ctx.db.read() as conn:
        return ok(await orders.get_order_by_reference(conn, order_reference))


@router.get("", responses=answers(OrderList, "OrderListAnswer"))
async def list_all_orders(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    status: Annotated[
        str | None,
        Query(max_length=200, description="comma-separated: " + ", ".join(ORDER_STATUSES)),
    ] = None,
    chain_id: Annotated[str | None, Query(alias="chainId", max_length=64)] = None,
    currency: Annotated[str | None, Query(max_length=16)] = None,
    order_reference: Annotated[str | None, Query(alias="orderReference", max_length=255)] = None,
    created_after: Annotated[datetime | None, Query(alias="createdAfter")] = None,
    created_before: Annotated[datetime | None, Query(alias="createdBefore")] = None,
) -> Response:
    filters = OrderFilters(
        statuses=comma_choices(status, ORDER_STATUSES, "status"),
        chain_id=chain_id,
        currency=currency,
        order_reference=order_reference,
        created_after=_aware(created_after, "createdAfter"),
        created_before=_aware(created_before, "createdBefore"),
    )
    async with ctx.db.read() as conn:
        rows, total = await list_orders(conn, filters=filters, offset=page.offset, limit=page.limit)
        payloads = await order_payloads(conn, [row.id for row in rows])
    data = {
        "orders": [payloads[row.id] for row in rows],
        "pagination": pagination(page=page.page, limit=page.limit, total=total),
    }
    return ok(data)


def _aware(moment: datetime | None, field: str) -> datetime | None:
    """A moment without a zone is UTC (docs/api.md, Conventions)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # an offset that leaves the years 1-9999
        message = "must be a moment between the years 1 and 9999 in UTC"
        raise ValidationFailed(
            f"{field} {message}", details=[{"field": field, "message": message}]
        ) from None


@router.get("/{orderId}", responses=answers(Order, "OrderDetailAnswer", 404))
async def get_order(ctx: Ctx, _key: Reader, order_id: OrderId) -> Response:
    async with ctx.db.read() as conn:
        return ok(await orders.get_order(conn, order_id))


@router.post(
    "/{orderId}/cancel",
    responses=answers(Order, "CancelOrderAnswer", 404, 409, *UPSTREAM_STATUSES),
)
async def cancel_order(ctx: Ctx, _key: Writer, order_id: OrderId) -> Response:
    cooldown = ctx.settings.orders.cooldown
    if ctx.upstream is not None:  # upstream mode: PayIn's cancel first, then ours
        order, cancelled = await cancel_order_through_upstream(
            ctx.db, ctx.upstream, order_id=order_id, cooldown=cooldown
        )
    else:
        order, cancelled = await orders.cancel_order(ctx.db, order_id=order_id, cooldown=cooldown)
    if cancelled and order.get("protocol") is not None:
        ctx.pool_alerts.changed(order["protocol"])  # free again at once when no cooldown
        return ok(order, message="Order cancelled")
    return ok(order, message="Order was already cancelled")
