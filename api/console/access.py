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


ERROR_TITLES = {400: "Refused", 403: "Refused", 404: "Not found", 405: "Not allowed"}


def error_page(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    """A console request refused before its session was read (a malformed query, an unknown
    page): the message page, without the navigation, in the API envelope's words."""
    title = ERROR_TITLES.get(status, "Refused" if status < 500 else "Something went wrong")
    response = page(render("message.html", session=None, title=title, message=text), status)
    response.headers.update(headers or {})
    return response


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
        return read_only(session, ctx)
    return checked_action(request, ctx, session, await posted_form(request))


def read_only(session: Session, ctx: AppContext) -> Response:
    return message(
        session,
        ctx,
        "Refused",
        "This key may read the console, not act in it (it needs the console:write scope).",
        403,
    )


def checked_action(
    request: Request, ctx: AppContext, session: Session, form: dict[str, str] | None
) -> dict[str, str] | Response:
    """`form` (None when it could not be read) if it is this session's own, posted from its
    page, with a reason; otherwise the page refusing it."""
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
