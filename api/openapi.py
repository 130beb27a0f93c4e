"""The OpenAPI document clients are generated from, and `/docs` and `/redoc` without a CDN.

The routes build their bodies themselves, so the document is completed here rather than
inferred: FastAPI's 422 (never sent: api/errors.py answers 400) is removed, every operation
lists the error statuses it can send with the error envelope, and the keyed routes (all of
`/api/v1`) name the bearer scheme, the statuses every keyed request can meet and, when rate
limits are on, the headers api/rate_limits.py writes on their answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from api.answers import ErrorEnvelope
from api.responses import JSON

KEYED_PREFIX = "/api/v1/"
ASSETS_PATH = "/docs-assets"
# The swagger-ui and redoc files shipped inside the fastapi-offline package.
ASSETS = Path(fastapi_offline.__file__).parent / "static"
BEARER = "bearerAuth"
ERROR_REF = "#/components/schemas/ErrorEnvelope"

DESCRIPTIONS = {
    "400": "Invalid request (VALIDATION_FAILED, INVALID_JSON, UNSUPPORTED_PROTOCOL, …)",
    "401": "API key missing or invalid",
    "403": "The API key lacks the scope this route needs",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "413": "Request body too large",
    "429": "Rate limit exceeded (see Retry-After)",
    "500": "Misconfigured for this request (CONFIGURATION_ERROR)",
    "502": "The upstream PayIn refused addrpool or answered something unexpected (upstream mode)",
    "503": "Unavailable: no free address, PayIn unreachable or limiting addrpool (upstream "
    "mode), SQLite busy with another writer (DATABASE_BUSY, with Retry-After), or PostgreSQL "
    "out of reach for a moment (DATABASE_UNAVAILABLE, with Retry-After)",
}
# Any request can be refused for unstorable text (api/text_guard.py), and any body over the
# limit (api/limits.py), whatever the route reads.
EVERY_OPERATION = ("400", "413")
# Keyed requests: a missing or bad key, a missing scope, a full window (with rate limits on),
# and SQLite's busy writer (a key's first use in a minute writes its last_used_at).
KEYED = ("401", "403", "503")
RATE_LIMITED = "429"
# (component, description, minimum) of each header api/rate_limits.py writes: every answer
# to a request with a valid key carries them, so all but 401 can.
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": (
        "RateLimitLimit",
        "The limit of the window closest to it (per second or per minute), in requests",
        1,
    ),
    "X-RateLimit-Remaining": ("RateLimitRemaining", "Requests left in that window", 0),
    "X-RateLimit-Reset": ("RateLimitReset", "Seconds until that window starts afresh", 1),
}
# Statuses only ever sent after the key was counted: their rate-limit headers are certain.
# A 400, 404, 413, 500 or 503 may come before the key is read (a body that is not JSON, a
# path no route has, a body over the limit, a busy database while checking the key).
COUNTED = ("200", "201", "202", "403", "409", "429", "502")
RETRY_AFTER = "Retry-After"
HEADER_REF = "#/components/headers/"
OPTIONAL = "IfSent"  # the component's name when an answer may lack the header


def operation_id(route: APIRoute) -> str:
    return route.name


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )


def _document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        complete(document, rate_limits=app.state.ctx.settings.rate_limits.enabled)
        app.openapi_schema = document
    return app.openapi_schema


def complete(document: dict[str, Any], *, rate_limits: bool) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["ErrorEnvelope"] = ErrorEnvelope.model_json_schema(ref_template=ERROR_REF)
    components["headers"] = header_components(rate_limits=rate_limits)
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`addrpool keys create`); `X-API-Key: …` works too",
        }
    }
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            _complete_operation(path, operation, rate_limits=rate_limits)


def _complete_operation(path: str, operation: dict[str, Any], *, rate_limits: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    keyed = path.startswith(KEYED_PREFIX)
    statuses = list(EVERY_OPERATION)
    if keyed:
        operation["security"] = [{BEARER: []}]
        statuses += KEYED
        if rate_limits:
            statuses.append(RATE_LIMITED)
    if "{" in path:  # a path parameter can name nothing, or decode to a path no route has
        statuses.append("404")
    for status in statuses:
        responses.setdefault(status, {"description": DESCRIPTIONS[status]})
    for status, response in responses.items():
        if status >= "400" and "content" not in response:
            response["description"] = DESCRIPTIONS.get(status, "Error")
            response["content"] = {JSON: {"schema": {"$ref": ERROR_REF}}}
        busy = status == "503" and response["content"][JSON]["schema"].get("$ref") == ERROR_REF
        headers = _headers(status, counted=keyed and rate_limits, busy=busy)
        if headers:
            response["headers"] = headers


def _headers(status: str, *, counted: bool, busy: bool) -> dict[str, Any]:
    """What api/rate_limits.py writes on the answers to a `counted` route, and what an error
    503 (`busy`: DATABASE_BUSY's Retry-After) may carry: required where every answer of the
    status carries it (the components of `header_components`)."""
    headers: dict[str, Any] = {}
    if counted and status != "401":
        certain = status in COUNTED
        for name, (component, *_) in RATE_LIMIT_HEADERS.items():
            headers[name] = {"$ref": HEADER_REF + component + ("" if certain else OPTIONAL)}
    if counted and status == RATE_LIMITED:
        headers[RETRY_AFTER] = {"$ref": HEADER_REF + "RetryAfter"}
    elif busy:
        headers[RETRY_AFTER] = {"$ref": HEADER_REF + "RetryAfter" + OPTIONAL}
    return headers


def header_components(*, rate_limits: bool) -> dict[str, Any]:
    """Each header once, required and optional: an operation's answers refer to them."""
    described = {"RetryAfter": ("Seconds to wait before retrying", 1)}
    if rate_limits:
        described |= {name: (text, low) for name, text, low in RATE_LIMIT_HEADERS.values()}
    components: dict[str, Any] = {}
    for component, (description, minimum) in described.items():
        for suffix, required in (("", True), (OPTIONAL, False)):
            components[component + suffix] = {
                "description": description,
                "required": required,
                "schema": {"type": "integer", "minimum": minimum},
            }
    return components
