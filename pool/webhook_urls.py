"""Where a webhook may go (SSRF): https to public addresses only, unless allowed otherwise.

The name is resolved when the endpoint is saved (a clear error then) and again before every
delivery; the request then goes to the address that was checked, so a DNS answer that changes
between the check and the connection cannot redirect it to an internal service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from pool.errors import ValidationFailed

ALLOW_PRIVATE_HINT = "ADDRPOOL_WEBHOOK_ALLOW_PRIVATE=true allows it (tests and the devnet only)"


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int


def parse_webhook_url(url: str, *, allow_private: bool) -> Target:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationFailed("url must be an absolute https:// URL", code="INVALID_URL")
    if parts.scheme == "http" and not allow_private:
        raise ValidationFailed(f"url must use https; {ALLOW_PRIVATE_HINT}", code="INVALID_URL")
    if parts.username or parts.password:
        raise ValidationFailed("url must not carry credentials", code="INVALID_URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationFailed("url has an invalid port", code="INVALID_URL") from exc
    return Target(url.strip(), parts.scheme, parts.hostname, port)


async def resolve_target(target: Target, *, allow_private: bool) -> str:
    """An address the host resolves to, refusing private ones (every answer is checked)."""
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationFailed(f"{target.host} does not resolve", code="INVALID_URL") from exc
    addresses = [str(answer[4][0]) for answer in answers]
    private = [a for a in addresses if not ipaddress.ip_address(a).is_global]
    if private and not allow_private:
        raise ValidationFailed(
            f"{target.host} resolves to a private address ({private[0]}); {ALLOW_PRIVATE_HINT}",
            code="PRIVATE_ADDRESS_REFUSED",
        )
    return addresses[0]
