"""Every failure leaves as the error envelope of docs/api.md, with its status: never FastAPI's
422."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from api.console.access import error_page
from api.responses import failure
from pool.kit.db_failures import is_database_busy, is_database_unreachable
from pool.kit.errors import (
    AddrpoolError,
    InsufficientAddresses,
    NotFound,
    PayloadTooLarge,
    UpstreamRefused,
    UpstreamUnavailable,
    ValidationFailed,
)

log = logging.getLogger("addrpool.api")


class MethodNotAllowed(AddrpoolError):
    status = 405
    error = "MethodNotAllowed"
    default_code = "METHOD_NOT_ALLOWED"


class DatabaseBusy(AddrpoolError):
    status = 503
    error = "ServiceUnavailable"
    default_code = "DATABASE_BUSY"


class DatabaseUnavailable(AddrpoolError):
    status = 503
    error = "ServiceUnavailable"
    default_code = "DATABASE_UNAVAILABLE"


BUSY_RETRY_AFTER_SECONDS = 1


class RefusedByUpstream(AddrpoolError):
    """Upstream mode: PayIn refused addrpool itself (its key), or answered a status that says
    nothing about the caller's request."""

    status = 502
    error = "UpstreamRefused"
    default_code = "UPSTREAM_REFUSED"


# Upstream mode: PayIn's 4xx that are about the caller's request are passed on as they came
# (its `error`, `code` and `message`); an unbind's 404 arrives as NotFound already.
UPSTREAM_PASSED_ON = (400, 404, 409, 413)
# What a route that asks PayIn can answer because of it (the OpenAPI document declares them).
UPSTREAM_STATUSES = (*UPSTREAM_PASSED_ON, 502, 503)


def upstream_refusal(exc: UpstreamRefused) -> AddrpoolError:
    """PayIn's answer as our caller gets it. Its 401 and 403 are about addrpool's upstream key,
    not the caller's (which was accepted here), and its 429 limits addrpool as a whole: passing
    them on would tell the caller something false about its own key."""
    if exc.status in UPSTREAM_PASSED_ON:
        return exc
    said = f"HTTP {exc.status} {exc.code}: {exc.message}"
    if exc.status == 429:
        return UpstreamUnavailable(
            f"PayIn is limiting addrpool's requests ({said}); retry later",
            code="UPSTREAM_RATE_LIMITED",
        )
    if exc.status in (401, 403):
        return RefusedByUpstream(
            f"PayIn refused addrpool's upstream API key ({said}); an operator must check "
            "ADDRPOOL_UPSTREAM_API_KEY"
        )
    return RefusedByUpstream(f"PayIn answered with a status addrpool does not pass on ({said})")


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_error(errors: Sequence[Any]) -> AddrpoolError:
    if any(e.get("type") == "json_invalid" for e in errors):
        return ValidationFailed("Request body is not valid JSON", code="INVALID_JSON")
    details = [{"field": _field(e.get("loc", ())), "message": _message(e)} for e in errors]
    code = "VALIDATION_FAILED"
    if any(_field(e.get("loc", ())) == "protocol" and e.get("type") != "missing" for e in errors):
        code = "UNSUPPORTED_PROTOCOL"
    if all(e.get("type") == "missing" for e in errors):
        message = "Required fields: " + ", ".join(d["field"] for d in details)
    else:
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return ValidationFailed(message, code=code, details=details)


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid"))
    # pydantic prefixes messages raised from validators with "Value error, ".
    return message.removeprefix("Value error, ")


async def _on_addrpool_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, AddrpoolError):  # pragma: no cover - registered for this type
        raise exc
    if isinstance(exc, InsufficientAddresses):
        # Expected when the pool runs dry, possibly thousands of times a second: the alert
        # engine reports the episode once; the log keeps it at info level.
        log.info("bind refused: %s", exc.message)
    elif exc.status >= 500:
        log.warning("request failed with %s: %s", exc.code, exc.message)
    return _answer(request, exc)


async def _on_upstream_refused(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, UpstreamRefused):  # pragma: no cover - registered for this type
        raise exc
    return await _on_addrpool_error(request, upstream_refusal(exc))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    return _answer(request, validation_error(exc.errors()))


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    mapped: AddrpoolError
    if exc.status_code == 404:
        mapped = NotFound("Route not found")
    elif exc.status_code == 405:
        allowed = ", ".join(_allowed_methods(request))
        mapped = MethodNotAllowed(f"Method not allowed on this route; it accepts {allowed}")
        return _answer(request, mapped, headers={"Allow": allowed})
    elif exc.status_code == 413:
        mapped = PayloadTooLarge(str(exc.detail))
    elif exc.status_code == 400:
        # FastAPI's answer when its JSON decoder fails other than on syntax: bytes that are
        # not UTF-8, nesting past the recursion limit, a number of thousands of digits.
        mapped = ValidationFailed(
            "Request body is not valid JSON: not UTF-8, nested too deeply, or a number too long",
            code="INVALID_JSON",
        )
    else:
        mapped = AddrpoolError(str(exc.detail))
        response = failure(mapped, headers=dict(exc.headers) if exc.headers else None)
        response.status_code = exc.status_code
        return response
    return _answer(request, mapped)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path accepts.

    Starlette's own `Allow` names only the first route of the path, while a path often has
    several (GET, PATCH and DELETE of one endpoint), so each method is tried on the routes.
    """
    path = {k: request.scope[k] for k in ("type", "path", "root_path") if k in request.scope}
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**path, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    if "GET" in allowed and "HEAD" not in allowed:  # answered as GET (api/head_requests.py)
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


async def _on_database_error(request: Request, exc: Exception) -> Response:
    """SQLite busy past its timeout (another process holds the writer: a large import), or
    PostgreSQL out of reach for a moment (restarting, a lost connection), is a moment to retry,
    not a fault: 503 with Retry-After and one warning line. Anything else is a fault (the
    catch-all's traceback)."""
    if not is_database_busy(exc):
        return await _on_unexpected(request, exc)
    log.warning(
        "%s %s answered 503: the database is busy (another process is writing)",
        request.method,
        _route_template(request),
    )
    busy = DatabaseBusy("The database is busy with another writer; retry shortly")
    return _answer(request, busy, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning(
        "%s %s answered 503: the database cannot be reached (%s)",
        request.method,
        _route_template(request),
        type(getattr(exc, "orig", exc)).__name__,
    )
    unavailable = DatabaseUnavailable("The database cannot be reached just now; retry shortly")
    return failure(unavailable, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    if is_database_unreachable(exc):  # SQLAlchemy's error, or the driver's own (a new connection)
        return _unavailable(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _answer(request, AddrpoolError("Internal server error"))


def _answer(
    request: Request, error: AddrpoolError, headers: dict[str, str] | None = None
) -> Response:
    """The error envelope — or, for a console page, the same words as a page a person reads."""
    path = request.url.path
    if (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/static/"):
        return error_page(error.status, error.message, headers)
    return failure(error, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AddrpoolError, _on_addrpool_error)
    app.add_exception_handler(UpstreamRefused, _on_upstream_refused)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    # Registered for their own types, so Starlette's error middleware does not also log them
    # again. asyncpg's own errors: those SQLAlchemy does not wrap (setting up a new connection).
    app.add_exception_handler(DBAPIError, _on_database_error)
    for driver_error in (asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(driver_error, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)


def _route_template(request: Request) -> str:
    """`/api/v1/deposits/reference/{deposit_reference}`, not the reference itself."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "(no route)"))
