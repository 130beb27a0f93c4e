"""The OpenAPI document clients are generated from, and `/docs` and `/redoc` without a CDN.

The routes build their bodies themselves, so the document is completed here rather than
inferred: FastAPI's 422 (never sent: api/errors.py answers 400) is removed, every operation
lists the error statuses it can send with the error envelope, and the keyed routes (all of
`/api/v1`) name the bearer scheme and the statuses every keyed request can meet.
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

from api.schemas import ErrorEnvelope

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
    "502": "The upstream PayIn answered something unexpected (upstream mode)",
    "503": "Unavailable: no free address, or an upstream or chain is unreachable",
}
# Every request can be refused for unstorable text (api/text_guard.py).
EVERY_OPERATION = ("400",)
KEYED = ("401", "403", "429")
WITH_BODY = ("413",)


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
        complete(document)
        app.openapi_schema = document
    return app.openapi_schema


def complete(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["ErrorEnvelope"] = ErrorEnvelope.model_json_schema(ref_template=ERROR_REF)
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`addrpool keys create`); `X-API-Key: …` works too",
        }
    }
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            _complete_operation(path, operation)


def _complete_operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    statuses = list(EVERY_OPERATION)
    if path.startswith(KEYED_PREFIX):
        operation["security"] = [{BEARER: []}]
        statuses += KEYED
    if "requestBody" in operation:
        statuses += WITH_BODY
    if "{" in path:  # a path parameter can name nothing, or decode to a path no route has
        statuses.append("404")
    for status in statuses:
        responses.setdefault(status, {"description": DESCRIPTIONS[status]})
    for status, response in responses.items():
        if status >= "400" and "content" not in response:
            response["description"] = DESCRIPTIONS.get(status, "Error")
            response["content"] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
