"""Webhook signatures (docs/design.md, Webhooks): PayIn's `body` scheme and the `timestamped` one.

`body`: lowercase hex HMAC-SHA256 of the body bytes, what PayIn's guide's receiver computes.
`timestamped`: `t=<unix>,v1=<hex>[,v1=<hex>…]`, each v1 an HMAC of `"<t>." + body` under one of the
endpoint's secrets (two during a rotation's grace period); the timestamp bounds replays.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

DEFAULT_TOLERANCE_SECONDS = 300
# Exactly what `sign_timestamped` writes: the timestamp first, then one or more v1 signatures.
_TIMESTAMPED = re.compile(r"t=(0|[1-9][0-9]{0,11})((?:,v1=[0-9a-f]{64})+)")


def sign_body(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def sign_timestamped(secrets: Sequence[bytes], body: bytes, timestamp: int) -> str:
    if not secrets:
        raise ValueError("a timestamped signature needs at least one secret")
    if timestamp < 0:
        raise ValueError("a signature timestamp is unix seconds, never negative")
    signed = _timestamped_message(timestamp, body)
    return ",".join([f"t={timestamp}", *(f"v1={sign_body(s, signed)}" for s in secrets)])


def verify_body(secret: bytes, body: bytes, signature: str) -> bool:
    # compare_digest refuses non-ASCII str; such a signature is simply wrong.
    return signature.isascii() and hmac.compare_digest(signature, sign_body(secret, body))


def verify_timestamped(
    secrets: Sequence[bytes],
    body: bytes,
    header: str,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when the header is well formed, its timestamp is within the tolerance of `now` (either
    side) and any of its v1 signatures matches any of the secrets."""
    parsed = _parse_timestamped(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if abs(now - timestamp) > tolerance_seconds:
        return False
    signed = _timestamped_message(timestamp, body)
    expected = [sign_body(secret, signed) for secret in secrets]
    # Every pair is compared, so the time taken says nothing about which one matched.
    matches = [hmac.compare_digest(given, want) for given in signatures for want in expected]
    return any(matches)


def _timestamped_message(timestamp: int, body: bytes) -> bytes:
    return f"{timestamp}.".encode() + body


def _parse_timestamped(header: str) -> tuple[int, list[str]] | None:
    match = _TIMESTAMPED.fullmatch(header)
    if match is None:
        return None
    return int(match.group(1)), match.group(2).removeprefix(",v1=").split(",v1=")
