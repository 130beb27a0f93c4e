"""The envelopes of docs/api.md: `{"success": true, "data": …}` and the error body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import Response

from pool.kit.errors import AddrpoolError
from pool.kit.paging import pagination

JSON = "application/json"
__all__ = ["JSON", "error_body", "failure", "ok", "pagination"]


def ok(data: Any, *, status: int = 200, message: str | None = None) -> Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if message is not None:
        body["message"] = message
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def error_body(
    *,
    error: str,
    code: str,
    message: str,
    details: Sequence[Mapping[str, Any]] | None = None,
) -> bytes:
    body: dict[str, Any] = {"success": False, "error": error, "code": code, "message": message}
    if details:
        body["details"] = details
    return orjson.dumps(body)


def failure(exc: AddrpoolError, headers: dict[str, str] | None = None) -> Response:
    content = orjson.dumps(exc.envelope())
    return Response(content, status_code=exc.status, media_type=JSON, headers=headers)
