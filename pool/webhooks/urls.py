"""Where a webhook may go (SSRF): https to public addresses only, unless allowed otherwise.

The URL is checked for shape first: no control characters or whitespace anywhere (they would
be stored, and reach the request line), no credentials, a port from 1 to 65535, brackets only
around an IPv6 address, a host name of DNS's lengths. The name is resolved when the endpoint is
saved (a clear error then) and again before every delivery; the request then goes to the
address that was checked, so a DNS answer that changes between the check and the connection
cannot redirect it to an internal service. Every answer must be public unicast
(`pool.kit.ip_ranges`). The delivery worker keeps a name's answers for a few seconds (`Resolver`):
one lookup per burst, not one per delivery; every use of a kept answer is checked again.

Alert hooks (`pool.alerts.hooks`) go through the same checks, with their own allow setting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from pool.kit.errors import TargetRefused, ValidationFailed
from pool.kit.ip_ranges import is_public_unicast

ALLOW_PRIVATE_HINT = "ADDRPOOL_WEBHOOK_ALLOW_PRIVATE=true allows it (tests and the devnet only)"
RESOLUTION_KEPT_SECONDS = 5.0  # short: a receiver that moves is followed within seconds
KEPT_NAMES_MAX = 4096
MAX_NAME_LENGTH = 253  # DNS: a name of 255 octets on the wire, 253 characters written out
MAX_LABEL_LENGTH = 63
# What getaddrinfo takes in a name (underscores included); urlsplit lowercases the host.
LABEL = re.compile(r"[a-z0-9_-]+")
BRACKETED = re.compile(r"\[([^\[\]]*)\](?::\d*)?")  # the whole netloc: [v6] or [v6]:port


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str  # ASCII: an internationalised name in its IDNA form
    port: int


def parse_webhook_url(url: str, *, allow_private: bool, hint: str = ALLOW_PRIVATE_HINT) -> Target:
    """The URL's target, or `TargetRefused` (code INVALID_URL) saying what is wrong with it.
    `hint` names the setting that allows http:// and private addresses."""
    _refuse_invisible_characters(url)
    parts = _split(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("url must be an absolute https:// URL")
    if parts.scheme == "http" and not allow_private:
        raise TargetRefused(f"url must use https; {hint}")
    if "@" in parts.netloc:
        raise TargetRefused("url must not carry credentials")
    return Target(url, parts.scheme, _checked_host(parts), _checked_port(parts))


def _refuse_invisible_characters(url: str) -> None:
    """Control, format and whitespace characters (Unicode categories C and Z), surrounding ones
    too: refused rather than trimmed, so what is stored is exactly what was given."""
    for position, char in enumerate(url):
        if unicodedata.category(char)[0] in "CZ":
            raise TargetRefused(
                f"url must not contain control characters or whitespace ({char!r} at {position})"
            )


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:  # unbalanced brackets, an IPv4 address in brackets
        raise TargetRefused(f"url is malformed: {exc}") from exc


def _checked_host(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if "[" in parts.netloc or "]" in parts.netloc:
        return _bracketed_ipv6(parts.netloc)
    try:
        ipaddress.IPv4Address(host)
        return host
    except ValueError:
        return _checked_name(host)


def _bracketed_ipv6(netloc: str) -> str:
    """Brackets hold an IPv6 address, without a zone index, and nothing else."""
    match = BRACKETED.fullmatch(netloc)
    try:
        if match is None or "%" in match.group(1):
            raise ValueError(netloc)
        return str(ipaddress.IPv6Address(match.group(1)))
    except ValueError as exc:
        raise TargetRefused(
            "url is malformed: brackets must hold an IPv6 address (and only a port after them)"
        ) from exc


def _checked_name(host: str) -> str:
    """A host name as DNS allows it (labels of 1 to 63 characters, 253 in all), in ASCII."""
    name = host.removesuffix(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise TargetRefused(f"url has an invalid host name ({exc})") from exc
    labels = name.split(".")
    if len(name) > MAX_NAME_LENGTH or any(len(label) > MAX_LABEL_LENGTH for label in labels):
        raise TargetRefused(
            f"url has a host name over {MAX_NAME_LENGTH} characters or a label over "
            f"{MAX_LABEL_LENGTH}"
        )
    if not all(LABEL.fullmatch(label) for label in labels):
        raise TargetRefused(f"url has an invalid host name: {host!r}")
    return name + ("." if host.endswith(".") else "")


def _checked_port(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("url has an invalid port") from exc
    if port == 0:
        raise TargetRefused("url has an invalid port (0)")
    return port or (443 if parts.scheme == "https" else 80)


async def resolve_target(
    target: Target, *, allow_private: bool, hint: str = ALLOW_PRIVATE_HINT
) -> str:
    """An address the host resolves to, refusing non-public ones (every answer is checked)."""
    return checked_address(target, await lookup(target), allow_private=allow_private, hint=hint)


async def lookup(target: Target) -> list[str]:
    """The host's addresses: itself if it is a literal IP (no resolver call), else DNS's. A
    name that does not resolve is a plain ValidationFailed: it may resolve later."""
    literal = literal_ip(target.host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValidationFailed(f"{target.host} does not resolve", code="INVALID_URL") from exc
    if not answers:
        raise ValidationFailed(f"{target.host} does not resolve", code="INVALID_URL")
    return [str(answer[4][0]) for answer in answers]


def checked_address(
    target: Target, addresses: list[str], *, allow_private: bool, hint: str = ALLOW_PRIVATE_HINT
) -> str:
    """The first address, once every one of them is found public (or private ones allowed)."""
    refused = [a for a in addresses if not is_public_unicast(ipaddress.ip_address(a))]
    if refused and not allow_private:
        found = refused[0]
        what = f"{found} is" if target.host == found else f"{target.host} resolves to {found},"
        raise TargetRefused(
            f"{what} not a public unicast address; {hint}", code="PRIVATE_ADDRESS_REFUSED"
        )
    return addresses[0]


class Resolver:
    """`resolve_target` with each name's answers kept `RESOLUTION_KEPT_SECONDS` (the delivery
    worker's: a lookup per delivery costs a thread hop each). The public-address check runs on
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


def literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
