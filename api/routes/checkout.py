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
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import RedirectResponse

from api.context import AppContext, context
from api.pages import PAGE_HEADERS, checkout_page, message_page, sentence
from api.pages.client_limits import ClientLimiter
from api.pages.form_tokens import FormTokens
from api.pages.i18n import Language, negotiate
from api.routes.orders import base_url
from api.routes.pages import HTML, PAGE_VARY, not_found
from pool.kit.clock import utc_now
from pool.kit.errors import InsufficientAddresses, ValidationFailed
from pool.kit.secret_box import secret_box
from pool.links.checkout import POOL_DRY_RETRY_SECONDS, LinkClosed, checkout, open_link
from pool.links.records import LinkRow
from pool.vocabulary import PROTOCOLS

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
AcceptLanguage = Annotated[str | None, Header()]
MAX_SLUG = 32
MAX_FORM_BYTES = 4096
FORM_TYPE = "application/x-www-form-urlencoded"
CLOSED_SENTENCE = {
    "draft": "closed_draft",
    "archived": "closed_archived",
    "expired": "closed_expired",
    "sold_out": "closed_sold_out",
}
# A link that takes no order: gone for good (410) or not now (409).
CLOSED_STATUS = {"draft": 404, "archived": 410, "expired": 410, "sold_out": 409}


def _form_tokens(request: Request, ctx: AppContext) -> FormTokens:
    """Made at the first checkout: the key file (SQLite) or ADDRPOOL_SECRET_KEY is needed only
    by an instance that serves payment links."""
    tokens: FormTokens | None = getattr(request.app.state, "form_tokens", None)
    if tokens is None:
        tokens = FormTokens(secret_box(ctx.settings).derive("checkout-form"))
        request.app.state.form_tokens = tokens
    return tokens


def _client_limiter(request: Request, ctx: AppContext) -> ClientLimiter:
    limiter: ClientLimiter | None = getattr(request.app.state, "checkout_limiter", None)
    if limiter is None:
        limiter = ClientLimiter(ctx.settings.checkout)
        request.app.state.checkout_limiter = limiter
    return limiter


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
    token = _form_tokens(request, ctx).issue(slug)
    return _page(checkout_page(link, language=language, form_token=token))


@router.post("/checkout/{slug}")
async def checkout_submit(
    request: Request, ctx: Ctx, slug: str, accept_language: AcceptLanguage = None
) -> Response:
    language = negotiate(accept_language)
    if len(slug) > MAX_SLUG or ctx.upstream is not None:
        return not_found(language)
    form = await _form(request)
    if (
        form is None
        or not _same_site(request)
        or not _form_tokens(request, ctx).valid(form.get("csrf"), slug)
    ):
        page = message_page(
            language, title_key="closed_title", message=sentence(language, "form_expired")
        )
        return _page(page, 403)
    wait = _client_limiter(request, ctx).take(request.client.host if request.client else "")
    if wait:
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
        return _closed(closed, language, slug)
    except ValidationFailed as refused:
        return await _form_again(request, ctx, slug, language, refused, amount, choice)
    except InsufficientAddresses as dry:
        if dry.protocol in PROTOCOLS:
            ctx.pool_alerts.changed(dry.protocol)
        return _busy(language, slug, POOL_DRY_RETRY_SECONDS, status=503)
    ctx.pool_alerts.changed(order["protocol"])  # evaluated off this request
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
    token = _form_tokens(request, ctx).issue(slug)
    chosen = int(choice) if choice.isdigit() and len(choice) < 4 else 0
    page = checkout_page(
        link, language=language, form_token=token, error=error, amount=amount[:80], chosen=chosen
    )
    return _page(page, 400)


async def _form(request: Request) -> dict[str, str] | None:
    """The posted form's fields (the first of each name), or None when it is not a small
    url-encoded form of printable text."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        parsed = parse_qs(body.decode("ascii"), max_num_fields=10, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    fields = {name: values[0] for name, values in parsed.items()}
    if any(not value.isprintable() for value in fields.values()):
        return None
    return fields


def _same_site(request: Request) -> bool:
    """Whether the browser says the post came from this site's own page. Browsers send
    `Sec-Fetch-Site`; without it an `Origin` other than `null` must name this host."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")
