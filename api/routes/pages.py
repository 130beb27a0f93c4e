"""The payer's pages, outside the API: no key, no cookie, no script (api/pages). Not in the
OpenAPI document: they are HTML for a browser, not operations for a client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.context import AppContext, context
from api.pages import PAGE_HEADERS, not_found_page, order_page, qr_svg
from pool.kit.clock import utc_now
from pool.orders.payloads import order_payloads
from pool.orders.repository import orders_by_ids

router = APIRouter(prefix="/pay/order", include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
HTML = "text/html; charset=utf-8"
SVG = "image/svg+xml"
MAX_ID = 64


def _not_found() -> Response:
    return Response(not_found_page(), status_code=404, media_type=HTML, headers=PAGE_HEADERS)


@router.get("/{order_id}")
async def payment_page(ctx: Ctx, order_id: str) -> Response:
    if len(order_id) > MAX_ID:
        return _not_found()
    async with ctx.db.read() as conn:
        found = await orders_by_ids(conn, [order_id])
        payloads = await order_payloads(conn, list(found))
    if order_id not in found:
        return _not_found()
    page = order_page(
        payloads[order_id], window_ends_at=found[order_id].window_ends_at, now=utc_now()
    )
    return Response(page, media_type=HTML, headers=PAGE_HEADERS)


@router.get("/{order_id}/qr.svg")
async def payment_qr(ctx: Ctx, order_id: str) -> Response:
    """The plain address: what every wallet's scanner reads (no payment URI scheme agrees
    across EVM wallets and Tron ones for a token amount)."""
    if len(order_id) > MAX_ID:
        return _not_found()
    async with ctx.db.read() as conn:
        found = await orders_by_ids(conn, [order_id])
    if order_id not in found:
        return _not_found()
    return Response(qr_svg(found[order_id].address), media_type=SVG, headers=PAGE_HEADERS)
