"""What every console page needs: its session from the cookie, its answers' headers, and the
checks on a signed-in form's post (the session's CSRF token, a same-site post, the right to act).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from api.console import render
from api.context import AppContext, context
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


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


async def require_session(
    request: Request, ctx: Annotated[AppContext, Depends(context)]
) -> Session:
    session = await signed_in(request, ctx)
    if session is None:
        raise SignInRequired
    return session


Signed = Annotated[Session, Depends(require_session)]


def install_sign_in_redirect(app: FastAPI) -> None:
    async def to_sign_in(_request: Request, _exc: Exception) -> Response:
        return redirect(SIGN_IN)

    app.add_exception_handler(SignInRequired, to_sign_in)


def show(
    template: str, session: Session, ctx: AppContext, here: str, status: int = 200, **values: Any
) -> Response:
    """A console page: the template with the navigation, this session and the network."""
    html = render(template, session=session, here=here, network=ctx.settings.network, **values)
    return page(html, status)


def message(session: Session, ctx: AppContext, title: str, text: str, status: int) -> Response:
    return show("message.html", session, ctx, "", status, title=title, message=text)


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
