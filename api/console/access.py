"""What every console page needs: its session from the cookie, its answers' headers, and the
checks on a signed-in form's post (the session's CSRF token, a same-site post, the right to act).
"""

from __future__ import annotations

import hmac

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from api.console import render
from api.context import AppContext
from api.pages import PAGE_HEADERS
from api.pages.forms import posted_form, same_site
from pool.console import service as console
from pool.console.service import Session
from pool.kit.clock import utc_now

HTML = "text/html; charset=utf-8"
COOKIE = "addrpool_console"
SIGN_IN = "/ui/sign-in"
MAX_TOKEN = 100


def page(html: str, status: int = 200) -> Response:
    return Response(html, status_code=status, media_type=HTML, headers=PAGE_HEADERS)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=PAGE_HEADERS)


async def signed_in(request: Request, ctx: AppContext) -> Session | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > MAX_TOKEN:
        return None
    async with ctx.db.read() as conn:
        return await console.session_of(conn, token=token, now=utc_now())


def message(
    session: Session | None, ctx: AppContext, title: str, text: str, status: int
) -> Response:
    html = render(
        "message.html", session=session, network=ctx.settings.network, title=title, message=text
    )
    return page(html, status)


def csrf_ok(presented: str | None, session: Session) -> bool:
    return bool(presented) and hmac.compare_digest(str(presented).encode(), session.csrf.encode())


async def acting_form(
    request: Request, ctx: AppContext, session: Session
) -> dict[str, str] | Response:
    """The posted form of an action, or the page refusing it: a read-only session, a stale or
    forged form, or no reason given (every action is audited with why)."""
    if not session.can_act:
        return message(
            session,
            ctx,
            "Refused",
            "This key may read the console, not act in it (it needs the console:write scope).",
            403,
        )
    form = await posted_form(request)
    if form is None or not same_site(request) or not csrf_ok(form.get("csrf"), session):
        return message(session, ctx, "Refused", "This form has expired: reload the page.", 403)
    if not form.get("reason", "").strip():
        return message(
            session,
            ctx,
            "Refused",
            "Say why: every action is recorded with its reason in the audit log.",
            400,
        )
    return form
