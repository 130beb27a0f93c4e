"""Where a webhook may go (SSRF): https to public addresses only, unless allowed otherwise.

The name is resolved when the endpoint is saved (a clear error then) and again before every
delivery; the request then goes to the address that was checked, so a DNS answer that changes
between the check and the connection cannot redirect it to an internal service. The delivery
worker keeps a name's answers for a few seconds (`Resolver`): one lookup per burst, not one per
delivery; every use of a kept answer is checked against the private ranges again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from pool.errors import ValidationFailed

ALLOW_PRIVATE_HINT = "ADDRPOOL_WEBHOOK_ALLOW_PRIVATE=true allows it (tests and the devnet only)"
RESOLUTION_KEPT_SECONDS = 5.0  # short: a receiver that moves is followed within seconds
KEPT_NAMES_MAX = 4096


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
    return checked_address(target, await lookup(target), allow_private=allow_private)


async def lookup(target: Target) -> list[str]:
    """The host's addresses: itself if it is a literal IP (no resolver call), else DNS's."""
    literal = _literal_ip(target.host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationFailed(f"{target.host} does not resolve", code="INVALID_URL") from exc
    return [str(answer[4][0]) for answer in answers]


def checked_address(target: Target, addresses: list[str], *, allow_private: bool) -> str:
    private = [a for a in addresses if not ipaddress.ip_address(a).is_global]
    if private and not allow_private:
        raise ValidationFailed(
            f"{target.host} resolves to a private address ({private[0]}); {ALLOW_PRIVATE_HINT}",
            code="PRIVATE_ADDRESS_REFUSED",
        )
    return addresses[0]


class Resolver:
    """`resolve_target` with each name's answers kept `RESOLUTION_KEPT_SECONDS` (the delivery
    worker's: a lookup per delivery costs a thread hop each). The private-range check runs on
    every call, kept answer or not; failures are not kept."""

    def __init__(self, kept_seconds: float = RESOLUTION_KEPT_SECONDS) -> None:
        self.kept_seconds = kept_seconds
        self._answers: dict[tuple[str, int], tuple[float, list[str]]] = {}

    async def resolve(self, target: Target, *, allow_private: bool) -> str:
        key = (target.host, target.port)
        now = time.monotonic()
        kept = self._answers.get(key)
        if kept is None or kept[0] <= now:
            kept = (now + self.kept_seconds, await self.lookup(target))
            if len(self._answers) >= KEPT_NAMES_MAX:
                self._answers.clear()  # endpoints come and go; never grow without bound
            self._answers[key] = kept
        return checked_address(target, kept[1], allow_private=allow_private)

    async def lookup(self, target: Target) -> list[str]:
        return await lookup(target)


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
