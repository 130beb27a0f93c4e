"""The operator console (`/ui`, docs/operations.md, The console): sign in with an API key, which
is exchanged for a session cookie, then server-rendered pages. Outside the OpenAPI document.

The key travels once, in the sign-in form's body: never in a URL, a page or a log line. The
cookie is HttpOnly, SameSite=Strict, Secure when the console is reached over https, scoped to
`/ui`, and expires with the session. Every form carries a CSRF token (the session's for a
signed-in form, a signed one for the sign-in form) and a post the browser marks as cross-site is
refused. Sign-in attempts are limited per client address.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.console import STYLESHEET, bar_chart, render
from api.console.access import (
    COOKIE,
    SIGN_IN,
    Signed,
    csrf_ok,
    message,
    page,
    redirect,
    show,
    signed_in,
)
from api.context import AppContext, context
from api.pages import PAGE_HEADERS
from api.pages.client_limits import limiter_of
from api.pages.form_tokens import form_tokens
from api.pages.forms import posted_form, same_site
from pool.console import service as console
from pool.console.overview import overview
from pool.kit.clock import utc_now
from pool.kit.errors import Forbidden, Unauthorized

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
SIGN_IN_FORM = "console-sign-in"  # what the sign-in form's token is bound to


def _sign_in_page(
    request: Request, ctx: AppContext, *, error: str | None = None, status: int = 200
) -> Response:
    token = form_tokens(request, ctx).issue(SIGN_IN_FORM)
    html = render("sign_in.html", session=None, form_token=token, error=error)
    return page(html, status)


@router.get(SIGN_IN)
async def sign_in_form(request: Request, ctx: Ctx) -> Response:
    if await signed_in(request, ctx) is not None:
        return redirect("/ui")
    return _sign_in_page(request, ctx)


@router.post(SIGN_IN)
async def sign_in(request: Request, ctx: Ctx) -> Response:
    form = await posted_form(request)
    if (
        form is None
        or not same_site(request)
        or not form_tokens(request, ctx).valid(form.get("csrf"), SIGN_IN_FORM)
    ):
        return _sign_in_page(
            request, ctx, error="This form has expired: sign in again.", status=403
        )
    limits = ctx.settings.console
    limiter = limiter_of(
        request, "sign_in", per_minute=limits.sign_ins_per_minute, burst=limits.sign_in_burst
    )
    wait = limiter.take(request.client.host if request.client else "")
    if wait:
        return _sign_in_page(
            request, ctx, error=f"Too many attempts: try again in {wait} s.", status=429
        )
    now = utc_now()
    try:
        token, session = await console.sign_in(
            ctx.db,
            presented=form.get("key", ""),
            network=ctx.settings.network,
            now=now,
            lifetime=ctx.settings.console.session_lifetime,
        )
    except (Unauthorized, Forbidden) as refused:
        return _sign_in_page(request, ctx, error=refused.message, status=refused.status)
    response = redirect("/ui")
    response.set_cookie(
        COOKIE,
        token,
        max_age=int((session.expires_at - now).total_seconds()),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_over_https(request, ctx),
    )
    return response


@router.post("/ui/sign-out")
async def sign_out(request: Request, ctx: Ctx) -> Response:
    session = await signed_in(request, ctx)
    form = await posted_form(request)
    if session is None:
        return redirect(SIGN_IN)
    if form is None or not same_site(request) or not csrf_ok(form.get("csrf"), session):
        return message(session, ctx, "Refused", "This form has expired: reload the page.", 403)
    await console.sign_out(ctx.db, token=request.cookies[COOKIE], session=session, now=utc_now())
    response = redirect(SIGN_IN)
    response.delete_cookie(
        COOKIE, path="/ui", httponly=True, samesite="strict", secure=_over_https(request, ctx)
    )
    return response


def _over_https(request: Request, ctx: AppContext) -> bool:
    public = ctx.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


@router.get("/ui")
async def overview_page(request: Request, ctx: Ctx, session: Signed) -> Response:
    async with ctx.db.read() as conn:
        shown = await overview(
            conn, now=utc_now(), alerts=ctx.settings.alerts, bind_hours=ctx.bind_hours
        )
    charts = [
        {
            "svg": bar_chart(days, label=f"{protocol.upper()} binds per day"),
            "caption": f"Binds per day on {protocol.upper()}, the last {len(days)} days (UTC)",
        }
        for protocol, days in shown.binds.items()
    ]
    return show(
        "overview.html",
        session,
        ctx,
        "/ui",
        pool=shown.pool,
        charts=charts,
        chains=shown.chains,
        problems=[],
        alerts=shown.alerts,
        report=shown.report,
        endpoints=shown.endpoints,
    )


@router.get("/ui/static/console.css")
async def stylesheet() -> Response:
    headers = {**PAGE_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
    return Response(STYLESHEET, media_type="text/css; charset=utf-8", headers=headers)


@router.get("/ui/{anything:path}")
async def no_such_page(request: Request, ctx: Ctx, session: Signed) -> Response:
    return message(session, ctx, "Not found", "There is no such page in the console.", 404)
