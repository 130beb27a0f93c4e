"""Refuse, before any route runs, text that a database or a JSON encoder cannot carry.

PostgreSQL's text types cannot hold NUL (U+0000), and a lone surrogate (U+D800–U+DFFF,
which JSON can spell as `"\\ud800"`) is not valid Unicode: neither UTF-8 encoder (asyncpg,
orjson) accepts it. Either one, anywhere a request carries text, would otherwise end as a
500 (NUL on PostgreSQL only). One check here covers the path, every query parameter and header,
and every string of a JSON body (keys and values, nested): 400 `VALIDATION_FAILED` naming
the field, identical on both databases, before anything is read or written.

A JSON body is parsed here only when a cheap byte scan says it might hold such text (an
escape `\\u0000` or `\\udXXX`, a NUL byte as UTF-16 and UTF-32 bodies have, or UTF-8
bytes encoding a surrogate): a large address list pays three memchr scans, the same as CSV text
(full of `\\n` escapes) one regex pass more (timings: docs/performance.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import BodyTooLarge
from api.responses import failure
from pool.kit.errors import AddrpoolError, PayloadTooLarge, ValidationFailed
from pool.kit.secret_detection import REDACTED, find_secrets

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Bytes that may decode to NUL or a lone surrogate, confirmed by parsing the body: a JSON
# escape, and UTF-8's encoding of a surrogate (which Python's JSON decoder lets through).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_FIELD_CHARS = 100
# Byte values, not one-byte strings: `int in bytes` is a bare memchr, several times faster
# than `bytes in bytes` on the short values every request carries.
_NUL_BYTE = 0
_BACKSLASH = ord("\\")
_SURROGATE_LEAD = 0xED  # UTF-8 encodes U+D000 to U+DFFF as ED xx xx
NUL = "may not contain a NUL character (U+0000)"
LONE_SURROGATE = "may not contain a lone surrogate (U+D800 to U+DFFF): it is not valid Unicode"


def unstorable_reason(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return NUL if found.group() == "\x00" else LONE_SURROGATE


def _refusal(field: str, reason: str) -> ValidationFailed:
    field = _shown(field)
    return ValidationFailed(f"{field}: {reason}", details=[{"field": field, "message": reason}])


def _shown(field: str) -> str:
    """A field's name as the answer may show it. Names come from the request (a JSON object's
    keys, a query parameter's name), so one holding what looks like a secret is never echoed;
    it is judged whole, before any cut could hide part of a secret."""
    if any(find_secrets(field)):
        return REDACTED
    return field[:_FIELD_CHARS]


def check_path(path: str) -> None:
    if reason := unstorable_reason(path):
        raise _refusal("path", reason)


def check_query(query_string: bytes) -> None:
    # Starlette decodes values as UTF-8 with replacement, so only a NUL can come through.
    if _NUL_BYTE not in query_string and b"%00" not in query_string:
        return
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if reason := unstorable_reason(name):
            raise _refusal("query parameter name", reason)
        if reason := unstorable_reason(value):
            raise _refusal(name, reason)


def check_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        if _NUL_BYTE in name:
            raise _refusal("header name", NUL)
        if _NUL_BYTE in value:
            raise _refusal(name.decode("latin-1"), NUL)


def check_json_body(raw: bytes) -> None:
    """Refuse a JSON body holding unstorable text; leave any other body to the route."""
    if not _may_hold_unstorable(raw):
        return
    try:
        # The decoder FastAPI uses: it accepts lone surrogates, so they can be found.
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return  # not JSON: the route answers INVALID_JSON (or ignores a body it does not read)
    for field, text, is_key in _strings(document):
        if reason := unstorable_reason(text):
            raise _refusal(field, f"a key {reason}" if is_key else reason)


def _may_hold_unstorable(raw: bytes) -> bool:
    """Single-byte `in` tests run at memchr speed; a regex only where they found something."""
    if _NUL_BYTE in raw:
        return True
    if _BACKSLASH in raw and _SUSPECT_ESCAPE.search(raw):
        return True
    return _SURROGATE_LEAD in raw and _ENCODED_SURROGATE.search(raw) is not None


def _strings(document: Any) -> Iterator[tuple[str, str, bool]]:
    """Every string of a parsed JSON document: (its field, the text, whether it is a key).

    Iterative, so any depth the decoder accepted is walked without recursion. A field is
    named as the error envelope names body fields (`metadata.tags.0`); keys on the way to it
    have been checked before they are used in a name.
    """
    pending: list[tuple[str, Any]] = [("body", document)]
    while pending:
        field, value = pending.pop()
        if isinstance(value, str):
            yield field, value, False
        elif isinstance(value, dict):
            for key, child in value.items():
                yield field, key, True
                pending.append((_join(field, key), child))
        elif isinstance(value, list):
            pending.extend((_join(field, str(n)), child) for n, child in enumerate(value))


def _join(field: str, part: str) -> str:
    return part if field == "body" else f"{field}.{part}"


class TextGuard:
    """ASGI middleware: refuses unstorable text before routing (see the module docstring).

    Installed inside `BodySizeLimit`, so a body is buffered here only up to the size limit.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_path(scope.get("path", ""))
            check_query(scope.get("query_string", b""))
            check_headers(scope.get("headers", ()))
            body = await _read_body(receive)
            check_json_body(body)
        except BodyTooLarge as exc:
            await failure(PayloadTooLarge(str(exc.detail)))(scope, receive, send)
            return
        except AddrpoolError as exc:
            await failure(exc)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the route sees an empty body, as it would have
        if not chunks and not message.get("more_body", False):
            return bytes(message.get("body", b""))  # the usual small body: one message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, as one message; then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
