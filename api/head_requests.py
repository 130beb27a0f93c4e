"""HEAD answered wherever GET is: the GET's status and headers, without its body.

HTTP requires it of every general-purpose server beside GET (RFC 9110, 9.1), and load
balancers and uptime monitors check `/health` with it; FastAPI's routes name GET alone, so HEAD
met 405.
The request goes on as a GET (the same authentication, limits and errors), and the body is
dropped on the way out: the headers keep the GET's Content-Length, as HEAD's should. The
access log, outside, still says HEAD.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        # The same scope, not a copy: the layers outside read what routing and the key left
        # in it (the access log's route and key, the rate limit's decision).
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, without_body)
        finally:
            scope["method"] = "HEAD"
