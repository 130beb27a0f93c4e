"""Refuse oversized bodies before they are buffered (docs/api.md: 413 PayloadTooLarge)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.console.access import error_page
from api.responses import JSON, error_body


def _too_large(limit: int) -> str:
    return f"Request body is larger than {limit} bytes"


class BodyTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body reader passes it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, per_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.max_bytes)
        if self._declared_length(scope) > limit:
            if scope.get("path", "").startswith("/ui/"):  # a person at the console reads it
                await error_page(413, _too_large(limit))(scope, receive, send)
                return
            await self._refuse(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    async def _refuse(self, send: Send, limit: int) -> None:
        body = error_body(
            error="PayloadTooLarge",
            code="PAYLOAD_TOO_LARGE",
            message=_too_large(limit),
        )
        headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
