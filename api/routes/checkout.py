"""A payment link's public checkout (docs/api.md, Payment links): the form, and its post that
creates the order and sends the payer to its payment page. No key, no cookie; outside the
OpenAPI document, as the payment page is.

What a stranger may do here is bounded: the form carries a token this server signed
(api/pages/form_tokens.py) and a post from another site is refused; each client address may
create a few orders a minute (api/pages/client_limits.py); each link holds at most its cap of
pending orders (pool.links.checkout). Refused, the page says when to try again.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import RedirectResponse

from api.context import AppContext, context
from api.pages import PAGE_HEADERS, checkout_page, message_page, sentence
from api.pages.client_limits import limiter_of
from api.pages.form_tokens import form_tokens
from api.pages.forms import posted_form, same_site
from api.pages.i18n import Language, negotiate
from api.routes.orders import base_url
from api.routes.pages import HTML, PAGE_VARY, not_found
from pool.kit.clock import utc_now
from pool.kit.errors import InsufficientAddresses, ValidationFailed
from pool.kit.metrics import count_checkout
from pool.links.checkout import POOL_DRY_RETRY_SECONDS, LinkClosed, checkout, open_link
from pool.links.records import LinkRow
from pool.vocabulary import PROTOCOLS

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
AcceptLanguage = Annotated[str | None, Header()]
MAX_SLUG = 32
CLOSED_SENTENCE = {
    "draft": "closed_draft",
    "archived": "closed_archived",
    "expired": "closed_expired",
    "sold_out": "closed_sold_out",
}
# A link that takes no order: not public (404), gone for good (410) or not now (409).
CLOSED_STATUS = {"draft": 404, "archived": 410, "expired": 410, "sold_out": 409}


def _page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        html, status_code=status, media_type=HTML, headers={**PAGE_VARY, **(headers or {})}
    )


def _closed(closed: LinkClosed, language: Language, slug: str) -> Response:
    if closed.reason == "not_found":
        return not_found(language)
    if closed.reason == "busy":
        return _busy(language, slug, closed.retry_after or 1)
    message = sentence(language, CLOSED_SENTENCE[closed.reason])
    page = message_page(language, title_key="closed_title", message=message)
    return _page(page, CLOSED_STATUS[closed.reason])


def _busy(language: Language, slug: str, seconds: int, status: int = 429) -> Response:
    message = sentence(language, "busy", seconds=seconds)
    page = message_page(language, title_key="busy_title", message=message, retry_url=slug)
    return _page(page, status, {"Retry-After": str(seconds)})


@router.get("/checkout/{slug}")
async def checkout_form(
    request: Request, ctx: Ctx, slug: str, accept_language: AcceptLanguage = None
) -> Response:
    language = negotiate(accept_language)
    if len(slug) > MAX_SLUG or ctx.upstream is not None:
        return not_found(language)
    async with ctx.db.read() as conn:
        try:
            link = await open_link(conn, slug, utc_now())
        except LinkClosed as closed:
            return _closed(closed, language, slug)
    token = form_tokens(request, ctx).issue(slug)
    return _page(checkout_page(link, language=language, form_token=token))


@router.post("/checkout/{slug}")
async def checkout_submit(
    request: Request, ctx: Ctx, slug: str, accept_language: AcceptLanguage = None
) -> Response:
    language = negotiate(accept_language)
    if len(slug) > MAX_SLUG or ctx.upstream is not None:
        return not_found(language)
    form = await posted_form(request)
    if (
        form is None
        or not same_site(request)
        or not form_tokens(request, ctx).valid(form.get("csrf"), slug)
    ):
        page = message_page(
            language, title_key="closed_title", message=sentence(language, "form_expired")
        )
        count_checkout("form_expired")
        return _page(page, 403)
    limits = ctx.settings.checkout
    limiter = limiter_of(
        request,
        "checkout",
        per_minute=limits.orders_per_client_per_minute,
        burst=limits.client_burst,
    )
    wait = limiter.take(request.client.host if request.client else "")
    if wait:
        count_checkout("client_limited")
        return _busy(language, slug, wait)
    choice = form.get("choice", "")
    amount = form.get("amount", "").strip()
    try:
        order = await checkout(
            ctx.db,
            slug=slug,
            choice=int(choice) if choice.isdigit() and len(choice) < 4 else -1,
            amount=amount or None,
            chains=ctx.order_chains,
            settings=ctx.settings.orders,
            pending_cap=ctx.settings.checkout.pending_per_link,
            allow_http=ctx.settings.webhook_allow_private,
            base_url=base_url(ctx, request),
        )
    except LinkClosed as closed:
        count_checkout("link_busy" if closed.reason == "busy" else "closed")
        return _closed(closed, language, slug)
    except ValidationFailed as refused:
        count_checkout("invalid")
        return await _form_again(request, ctx, slug, language, refused, amount, choice)
    except InsufficientAddresses as dry:
        count_checkout("pool_empty")
        if dry.protocol in PROTOCOLS:
            ctx.pool_alerts.changed(dry.protocol)
        return _busy(language, slug, POOL_DRY_RETRY_SECONDS, status=503)
    ctx.pool_alerts.changed(order["protocol"])  # evaluated off this request
    count_checkout("created")
    return RedirectResponse(order["paymentUrl"], status_code=303, headers=PAGE_HEADERS)


async def _form_again(
    request: Request,
    ctx: AppContext,
    slug: str,
    language: Language,
    refused: ValidationFailed,
    amount: str,
    choice: str,
) -> Response:
    """The form again, saying what to correct (the link may have closed meanwhile)."""
    fields = {detail.get("field") for detail in refused.details or []}
    error = sentence(
        language, "checkout_invalid_amount" if "amount" in fields else "checkout_invalid_choice"
    )
    async with ctx.db.read() as conn:
        try:
            link: LinkRow = await open_link(conn, slug, utc_now())
        except LinkClosed as closed:
            return _closed(closed, language, slug)
    token = form_tokens(request, ctx).issue(slug)
    chosen = int(choice) if choice.isdigit() and len(choice) < 4 else 0
    page = checkout_page(
        link, language=language, form_token=token, error=error, amount=amount[:80], chosen=chosen
    )
    return _page(page, 400)
