"""The console's orders and references pages (docs/operations.md, The console): orders
filtered by status, chain, token and reference, each with its transfers; references searched,
each with its totals and binding history."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.console.access import Signed, message, show
from api.context import AppContext, context
from api.schemas import REFERENCE_PATTERN
from pool.bindings import references
from pool.bindings.payloads import reference_payload, reference_summary_payload
from pool.kit.errors import NotFound
from pool.kit.paging import pagination
from pool.orders.listing_repository import OrderFilters, list_orders
from pool.orders.payloads import order_payloads
from pool.vocabulary import ORDER_STATUSES, PROTOCOLS

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
PER_PAGE = 50
Text = Annotated[str | None, Query(max_length=255)]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]


def _query(params: dict[str, str | None]) -> str:
    return urlencode({k: v for k, v in params.items() if v}) + "&"


@router.get("/ui/orders")
async def orders_page(
    request: Request,
    ctx: Ctx,
    session: Signed,
    status: Text = None,
    chain: Text = None,
    token: Text = None,
    reference: Text = None,
    page_number: PageNumber = 1,
) -> Response:
    filters = OrderFilters(
        statuses=(status,) if status in ORDER_STATUSES else (),
        chain_id=chain or None,
        currency=token or None,
        order_reference=reference or None,
    )
    async with ctx.db.read() as conn:
        rows, total = await list_orders(
            conn, filters=filters, offset=(page_number - 1) * PER_PAGE, limit=PER_PAGE
        )
        shown = await order_payloads(conn, [row.id for row in rows])
    params = {"status": status, "chain": chain, "token": token, "reference": reference}
    return show(
        "orders.html",
        session,
        ctx,
        "/ui/orders",
        orders=[shown[row.id] for row in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        params={k: v or "" for k, v in params.items()},
        query=_query(params),
        statuses=ORDER_STATUSES,
    )


@router.get("/ui/orders/{order_id}")
async def order_page(
    request: Request, ctx: Ctx, session: Signed, order_id: Annotated[str, Path(max_length=64)]
) -> Response:
    async with ctx.db.read() as conn:
        found = await order_payloads(conn, [order_id])
    if order_id not in found:
        return message(session, ctx, "Not found", f"No order {order_id}.", 404)
    return show(
        "order.html",
        session,
        ctx,
        "/ui/orders",
        order=found[order_id],
    )


@router.get("/ui/references")
async def references_page(
    request: Request,
    ctx: Ctx,
    session: Signed,
    search: Text = None,
    protocol: Text = None,
    page_number: PageNumber = 1,
) -> Response:
    chosen = next((p for p in PROTOCOLS if p == protocol), None)
    async with ctx.db.read() as conn:
        rows, total = await references.list_references(
            conn,
            protocol=chosen,
            search=search or None,
            offset=(page_number - 1) * PER_PAGE,
            limit=PER_PAGE,
        )
    params = {"search": search, "protocol": chosen}
    return show(
        "references.html",
        session,
        ctx,
        "/ui/references",
        references=[reference_summary_payload(b, totals) for b, totals in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        params={k: v or "" for k, v in params.items()},
        query=_query(params),
        protocols=PROTOCOLS,
    )


@router.get("/ui/references/{reference}")
async def reference_page(
    request: Request,
    ctx: Ctx,
    session: Signed,
    reference: Annotated[str, Path(pattern=REFERENCE_PATTERN, max_length=255)],
    protocol: Text = None,
) -> Response:
    chosen = next((p for p in PROTOCOLS if p == protocol), None)
    try:
        async with ctx.db.read() as conn:
            view = await references.get_reference(conn, reference=reference, protocol=chosen)
    except NotFound as missing:
        return message(session, ctx, "Not found", missing.message, 404)
    return show(
        "reference.html",
        session,
        ctx,
        "/ui/references",
        reference=reference_payload(view, ctx.monitored_chains.get(view.binding.protocol, [])),
    )
