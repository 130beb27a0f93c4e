"""One webhook or alert hook request on the wire: to the address that was checked, no redirects,
a timeout.

aiohttp rather than httpx: against the same local receiver a bare aiohttp loop costs a small
fraction of httpx's CPU per request (docs/performance.md, Webhooks;
`scripts/bench/webhooks_baseline.py`), and the request was the largest part of a delivery's cost.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp
import certifi
from yarl import URL

from pool.webhooks.urls import Target

BODY_KEPT = 1024  # bytes of the answer kept with the attempt; the rest is never read

# What a request can fail with, short of an answer: refused, reset, TLS, timeout, bad URL.
SEND_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    body: str  # the first BODY_KEPT bytes, decoded leniently
    retry_after: str | None


class WebhookSender:
    """Keep-alive connections shared by all deliveries; created in the running event loop."""

    def __init__(self, *, timeout: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # certifi's CA bundle, as httpx used before: the same receivers verify as before, also
        # on slim images whose system CA store is empty.
        self._ssl = ssl_context or ssl.create_default_context(cafile=certifi.where())
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self,
        target: Target,
        address: str,
        body: bytes,
        headers: dict[str, str],
        *,
        time_limit: float | None = None,
    ) -> Answer:
        """POST `body` to `target`'s URL, connecting to `address` (already checked) instead of
        resolving the name again: a DNS answer that changed since cannot redirect it (SSRF).
        TLS still sends and verifies the name (SNI and certificate); Host names it too.
        `time_limit` (seconds) replaces the sender's timeout for this request."""
        https = target.scheme == "https"
        async with self._open().post(
            pinned_url(target, address),
            data=body,
            headers={**headers, "Host": host_header(target)},
            allow_redirects=False,
            server_hostname=target.host if https else None,
            timeout=self._timeout if time_limit is None else aiohttp.ClientTimeout(time_limit),
        ) as response:
            kept = await _first_bytes(response, BODY_KEPT)
            return Answer(
                status_code=response.status,
                body=kept.decode("utf-8", errors="replace"),
                retry_after=response.headers.get("Retry-After"),
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No connection limit here: each endpoint has its own (PER_ENDPOINT), and a shared
            # one would let dead endpoints' hanging requests queue everybody else's.
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # a receiver's cookies go nowhere
                trust_env=False,  # no proxy from the environment: it would see every body
            )
        return self._session


def pinned_url(target: Target, address: str) -> URL:
    """The endpoint's URL with the host replaced by the checked address (path kept as is)."""
    return URL(target.url, encoded=True).with_host(address)


def host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    shown = f"[{target.host}]" if ":" in target.host else target.host
    return shown if target.port == default else f"{shown}:{target.port}"


async def _first_bytes(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body: a receiver answering gigabytes costs us nothing (the
    connection is closed rather than drained)."""
    kept = bytearray()
    async for chunk in response.content.iter_chunked(limit):
        kept += chunk
        if len(kept) >= limit:
            break
    return bytes(kept[:limit])
