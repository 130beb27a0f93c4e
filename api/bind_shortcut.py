"""The bind's usual request, answered without FastAPI's per-request machinery.

`POST /api/v1/deposits/bind` is the API's hot path, and FastAPI's handling of a request — its
routing through the included routers, the solving of the route's dependencies, the body's
content type parsed by `email.message`, its exit stacks — costs the event loop more than the
bind's own work does (docs/performance.md, Bind). This route, first in the app's routes, takes
that request when it is the plain case: a JSON body (`Content-Type: application/json`) that
the route's own model accepts, and no dependency overrides. It then runs what FastAPI would:
the route's key-and-context dependency, then the route function itself, and sends its answer.

Anything else — another content type, a body that is not JSON or that the model refuses, an
empty body — goes to the FastAPI route unchanged, the body replayed, so every refusal is
FastAPI's own. Nothing has been done by then: the model's validation has no side effect, and
the key (with its rate-limit count) is checked only for a body the model accepted, as FastAPI
checks it before it validates the body. Errors the dependency or the route raise leave as they
would from the FastAPI route: to the app's exception handlers (the same handlers, installed
around the router). `tests/api/test_bind_shortcut.py` compares both paths' answers.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from api.routes import deposits
from api.schemas import BindRequest

BIND_PATH = "/api/v1/deposits/bind"
# Content-Type values FastAPI reads as JSON (`email.message` parses them to application/json; a
# charset changes nothing: the body is decoded as JSON text is). Any other value, however
# FastAPI would read it, goes to the FastAPI route.
_JSON_TYPES = frozenset(
    (b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8")
)


class BindShortcut(BaseRoute):
    def __init__(self, app: FastAPI, route: APIRoute) -> None:
        self._app = app
        self._route = route  # the FastAPI route: the fallback, and `scope["route"]` (access log)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and _route_path(scope) == BIND_PATH
            and not self._app.dependency_overrides
        ):
            return Match.FULL, {"endpoint": deposits.bind, "path_params": {}, "route": self._route}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages, body = await _read_body(receive)
        request = _plain_request(scope, body) if body is not None else None
        if request is None:
            await self._route.handle(scope, _replay(messages, receive), send)
            return
        caller = await deposits.bind_caller(Request(scope, receive))
        response = await deposits.bind(request, caller)
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        return self._route.url_path_for(name, **path_params)


def install_bind_shortcut(app: FastAPI) -> None:
    """First in the app's routes, so the bind's requests reach it before any other match."""
    route = next(
        r
        for r in deposits.router.routes
        if isinstance(r, APIRoute) and r.path == BIND_PATH and "POST" in (r.methods or ())
    )
    app.router.routes.insert(0, BindShortcut(app, route))


def _route_path(scope: Scope) -> str:
    """The path below `root_path`, as Starlette's routing matches it (its `get_route_path`)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


def _plain_request(scope: Scope, body: bytes) -> BindRequest | None:
    """The body as the route's model, when FastAPI would read it as this very JSON document
    and accept it; None for anything else (FastAPI answers that)."""
    if not body or _content_type(scope) not in _JSON_TYPES:
        return None
    try:
        # What FastAPI does for this content type: the stdlib's json.loads (Starlette's
        # `Request.json`), then the model's validation of the document.
        return BindRequest.model_validate(json.loads(body))
    except Exception:  # noqa: BLE001 - any refusal is FastAPI's to make, in its own words
        return None


def _content_type(scope: Scope) -> bytes | None:
    """The first Content-Type header, as Starlette's `Headers.get` reads it."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value)
    return None


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read, and the whole body; None for the body when the client left first."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """The messages already read, in order; then whatever the server says next."""
    pending = list(reversed(messages))

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
