"""The console's orders and references pages (docs/operations.md, The console): orders
filtered by status, chain, token and reference, each with its transfers; references searched,
each with its totals and binding history."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.console import render
from api.console.access import SIGN_IN, message, page, redirect, signed_in
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
    status: Text = None,
    chain: Text = None,
    token: Text = None,
    reference: Text = None,
    page_number: PageNumber = 1,
) -> Response:
    session = await signed_in(request, ctx)
    if session is None:
        return redirect(SIGN_IN)
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
    html = render(
        "orders.html",
        session=session,
        here="/ui/orders",
        network=ctx.settings.network,
        orders=[shown[row.id] for row in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        params={k: v or "" for k, v in params.items()},
        query=_query(params),
        statuses=ORDER_STATUSES,
    )
    return page(html)


@router.get("/ui/orders/{order_id}")
async def order_page(
    request: Request, ctx: Ctx, order_id: Annotated[str, Path(max_length=64)]
) -> Response:
    session = await signed_in(request, ctx)
    if session is None:
        return redirect(SIGN_IN)
    async with ctx.db.read() as conn:
        found = await order_payloads(conn, [order_id])
    if order_id not in found:
        return message(session, ctx, "Not found", f"No order {order_id}.", 404)
    html = render(
        "order.html",
        session=session,
        here="/ui/orders",
        network=ctx.settings.network,
        order=found[order_id],
    )
    return page(html)


@router.get("/ui/references")
async def references_page(
    request: Request,
    ctx: Ctx,
    search: Text = None,
    protocol: Text = None,
    page_number: PageNumber = 1,
) -> Response:
    session = await signed_in(request, ctx)
    if session is None:
        return redirect(SIGN_IN)
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
    html = render(
        "references.html",
        session=session,
        here="/ui/references",
        network=ctx.settings.network,
        references=[reference_summary_payload(b, totals) for b, totals in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        params={k: v or "" for k, v in params.items()},
        query=_query(params),
        protocols=PROTOCOLS,
    )
    return page(html)


@router.get("/ui/references/{reference}")
async def reference_page(
    request: Request,
    ctx: Ctx,
    reference: Annotated[str, Path(pattern=REFERENCE_PATTERN, max_length=255)],
    protocol: Text = None,
) -> Response:
    session = await signed_in(request, ctx)
    if session is None:
        return redirect(SIGN_IN)
    chosen = next((p for p in PROTOCOLS if p == protocol), None)
    try:
        async with ctx.db.read() as conn:
            view = await references.get_reference(conn, reference=reference, protocol=chosen)
    except NotFound as missing:
        return message(session, ctx, "Not found", missing.message, 404)
    html = render(
        "reference.html",
        session=session,
        here="/ui/references",
        network=ctx.settings.network,
        reference=reference_payload(view, ctx.monitored_chains.get(view.binding.protocol, [])),
    )
    return page(html)
