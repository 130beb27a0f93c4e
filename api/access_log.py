"""One log line per request: method, route template, status, duration and the key's id.

The route template (`/api/v1/deposits/{reference}`), not the raw path, so lines group by
endpoint and a deposit reference is not copied into every log. The key's stored id, never the
key itself (`api.auth` leaves it in the request's state).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("addrpool.access")
KEY_ID_STATE = "key_id"


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # With INFO off (`log_level = "WARNING"`) the line would be dropped: skip its making,
        # which costs a request several microseconds (docs/performance.md, Bind).
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            _log(scope, status, started)


def _log(scope: Scope, status: int, started: float) -> None:
    route = _route_template(scope)
    log.info(
        "%s %s %d",
        scope["method"],
        route or "(no route)",
        status,
        extra={
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "key_id": scope.get("state", {}).get(KEY_ID_STATE),
        },
    )


def _route_template(scope: Scope) -> str | None:
    """The matched route's path template; None when no route matched (a 404)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None
