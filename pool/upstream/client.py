"""A PayIn API client for upstream mode: PayIn's endpoints and envelope, with timeouts and
bounded retries on what a retry can cure (timeouts, connection errors, 5xx) — never on a 4xx,
which would fail the same way again.

Bind and unbind are idempotent at PayIn (a bound reference gets its binding back, an unbound
one a 404), and so are an order's creation (the same orderReference and fields get the existing
order back) and its cancel (a cancelled order is answered as it is): a retry after an answer
lost on the way back is safe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from pool import __version__
from pool.kit.errors import (
    InsufficientAddresses,
    NotFound,
    UpstreamRefused,
    UpstreamUnavailable,
)

log = logging.getLogger("addrpool.upstream")
FIRST_RETRY_SECONDS = 0.2


class UpstreamClient:
    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 10.0, retries: int = 2
    ) -> None:
        self.retries = retries
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"addrpool/{__version__} (upstream mode)",
            },
        )

    async def bind(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(PayIn's status, 201 new or 200 existing; its `data`)."""
        return await self._request("POST", "/api/v1/deposits/bind", body)

    async def unbind(self, body: dict[str, Any]) -> dict[str, Any]:
        return (await self._request("POST", "/api/v1/deposits/unbind", body))[1]

    async def reference(self, reference: str, protocol: str | None) -> dict[str, Any]:
        path = f"/api/v1/deposits/references/{quote(reference, safe='')}"
        query = f"?protocol={protocol}" if protocol else ""
        return (await self._request("GET", path + query, None))[1]

    async def create_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(PayIn's status, 201 new or 200 existing; its `data`: the order)."""
        return await self._request("POST", "/api/v1/orders", body)

    async def cancel_order(self, order_id: str) -> dict[str, Any]:
        path = f"/api/v1/orders/{quote(order_id, safe='')}/cancel"
        return (await self._request("POST", path, None))[1]

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        failure = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(FIRST_RETRY_SECONDS * 2 ** (attempt - 1))
            try:
                answer = await self._http.request(method, path, content=content, headers=headers)
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                # PayIn's empty pool is a 503 too, but a final answer, not an outage.
                if answer.status_code < 500 or _is_insufficient(answer):
                    return answer.status_code, _data_or_raise(answer)
                failure = f"HTTP {answer.status_code}"
            log.warning(
                "upstream request failed",
                extra={"path": path, "attempt": attempt + 1, "error": failure},
            )
        raise UpstreamUnavailable(f"PayIn did not answer {method} {path}: {failure}")


def _data_or_raise(answer: httpx.Response) -> dict[str, Any]:
    """PayIn's success envelope's `data`; its errors as ours (its InsufficientAddresses too)."""
    try:
        envelope = answer.json()
    except ValueError as exc:
        raise UpstreamUnavailable(f"PayIn answered HTTP {answer.status_code} without JSON") from exc
    if not isinstance(envelope, dict):
        raise UpstreamUnavailable("PayIn answered with something other than its envelope")
    if answer.is_success and envelope.get("success") is True:
        data = envelope.get("data")
        return data if isinstance(data, dict) else {}
    error = str(envelope.get("error") or "UpstreamError")
    code = str(envelope.get("code") or "UPSTREAM_ERROR")
    message = str(
        envelope.get("message") or f"PayIn refused the request (HTTP {answer.status_code})"
    )
    if error == "InsufficientAddresses" or code == "INSUFFICIENT_ADDRESSES":
        raise _insufficient(message)
    if answer.status_code == 404:
        raise NotFound(message, code=code)
    raise UpstreamRefused(answer.status_code, error, code, message)


def _is_insufficient(answer: httpx.Response) -> bool:
    try:
        envelope = answer.json()
    except ValueError:
        return False
    return isinstance(envelope, dict) and envelope.get("error") == "InsufficientAddresses"


def _insufficient(message: str) -> InsufficientAddresses:
    refused = InsufficientAddresses("")
    refused.message = message  # PayIn's own words name the protocol
    refused.args = (message,)
    return refused
