"""The payer's pages, outside the API: no key, no cookie (api/pages). Not in the OpenAPI
document: they are for a browser, not operations for a client — the status poll included,
which only the page's own script reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse

from api.context import AppContext, context
from api.pages import PAGE_HEADERS, STATIC_FILES, not_found_page, order_page, qr_svg
from api.pages.i18n import Language, negotiate
from pool.kit.clock import utc_now
from pool.orders.payer_view import PayerView, payer_view_of
from pool.orders.repository import orders_by_ids

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
AcceptLanguage = Annotated[str | None, Header()]
HTML = "text/html; charset=utf-8"
SVG = "image/svg+xml"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# Order ids are `ord_` and 32 hex digits; anything much longer is not worth a query.
MAX_ID = 64
PAGE_VARY = {**PAGE_HEADERS, "Vary": "Accept-Language"}


def _not_found(accept_language: str | None) -> Response:
    return not_found(negotiate(accept_language))


def not_found(language: Language) -> Response:
    page = not_found_page(language)
    return Response(page, status_code=404, media_type=HTML, headers=PAGE_VARY)


async def _view(ctx: AppContext, order_id: str) -> PayerView | None:
    if len(order_id) > MAX_ID:
        return None
    # Every payer's browser polls this: on PostgreSQL one statement, no BEGIN/COMMIT around it.
    db = ctx.db
    async with db.read() if db.is_sqlite else db.autocommit() as conn:
        return await payer_view_of(conn, order_id)


@router.get("/pay/order/{order_id}")
async def payment_page(ctx: Ctx, order_id: str, accept_language: AcceptLanguage = None) -> Response:
    view = await _view(ctx, order_id)
    if view is None:
        return _not_found(accept_language)
    page = order_page(view, language=negotiate(accept_language), now=utc_now())
    return Response(page, media_type=HTML, headers=PAGE_VARY)


@router.get("/pay/order/{order_id}/status")
async def payment_status(ctx: Ctx, order_id: str) -> Response:
    """What the page's script polls: docs/api.md, Public pages."""
    view = await _view(ctx, order_id)
    if view is None:
        body = {
            "success": False,
            "error": "NotFound",
            "code": "ORDER_NOT_FOUND",
            "message": "No payment at this link",
        }
        return JSONResponse(body, status_code=404, headers=PAGE_HEADERS)
    body = {"success": True, "data": view.status_payload(utc_now())}
    return JSONResponse(body, headers=PAGE_HEADERS)


@router.get("/pay/order/{order_id}/qr.svg")
async def payment_qr(ctx: Ctx, order_id: str, accept_language: AcceptLanguage = None) -> Response:
    """The plain address: what every wallet's scanner reads (docs/api.md says why)."""
    if len(order_id) > MAX_ID:
        return _not_found(accept_language)
    async with ctx.db.read() as conn:
        found = await orders_by_ids(conn, [order_id])
    if order_id not in found:
        return _not_found(accept_language)
    return Response(qr_svg(found[order_id].address), media_type=SVG, headers=PAGE_HEADERS)


@router.get("/pay/static/{name}")
async def static_file(name: str, accept_language: AcceptLanguage = None) -> Response:
    """The page's stylesheet and script: only the files shipped, each URL carrying its version,
    so a browser keeps them for good."""
    if name not in STATIC_FILES:
        return _not_found(accept_language)
    data, _ = STATIC_FILES[name]
    headers = {
        **PAGE_HEADERS,
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    return Response(data, media_type=STATIC_TYPES[name[name.rfind(".") :]], headers=headers)


@router.get("/pay/{anything:path}")
async def no_such_page(accept_language: AcceptLanguage = None) -> Response:
    """Anything else under /pay/ is a page a payer followed a wrong link to: a page, not JSON."""
    return _not_found(accept_language)
