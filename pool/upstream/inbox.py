"""Upstream mode's inbox: PayIn's webhooks in, verified on the raw body, stored once.

Both of PayIn's schemes are accepted, compared in constant time: its guide's plain
`X-PayIn-Signature: <hex HMAC-SHA256>` — over the raw body, or over what that guide's receiver
signs, `JSON.stringify(req.body)` — and `t=<unix>,v1=<hex>` over `"t.body"` within a replay
window. A refused request is stored too (`rejected`, with why): the audit trail of who tried
what. An accepted event is stored once by its id; a redelivery is acknowledged and dropped.
Checking it against the chain happens later, off the request (`chains/checks/upstream_check.py`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.upstream import repository as repo
from pool.upstream.repository import RECEIVED, REJECTED
from pool.webhooks.body import body_bytes
from pool.webhooks.signatures import verify_body, verify_timestamped


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    reason: str | None = None
    payload: dict[str, Any] | None = None


def verify(
    raw: bytes,
    signature: str | None,
    secret: bytes,
    *,
    window_seconds: int,
    now: float | None = None,
) -> Verdict:
    payload = _json_object(raw)
    if not signature:
        return Verdict(False, "no X-PayIn-Signature header", payload)
    if signature.startswith("t="):
        moment = int(now if now is not None else time.time())
        if not verify_timestamped([secret], raw, signature, moment, window_seconds):
            return Verdict(
                False, "timestamped signature invalid or outside the replay window", payload
            )
    elif not _plain_signature_matches(raw, payload, signature, secret):
        return Verdict(False, "signature does not match", payload)
    if payload is None:
        return Verdict(False, "body is not a JSON object", None)
    if not isinstance(payload.get("id"), str) or not payload["id"]:
        return Verdict(False, "event has no id", payload)
    return Verdict(True, None, payload)


def _plain_signature_matches(
    raw: bytes, payload: dict[str, Any] | None, signature: str, secret: bytes
) -> bool:
    """Over the raw bytes, or over JSON.stringify of the parsed body (PayIn's guide)."""
    candidates = [raw]
    if payload is not None:
        with contextlib.suppress(TypeError, ValueError):  # not JSON a JavaScript peer could send
            candidates.append(body_bytes(payload))
    # Both are always computed: the time taken does not say which form matched.
    return any([verify_body(secret, candidate, signature) for candidate in candidates])


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


async def store(conn: AsyncConnection, verdict: Verdict, *, now: datetime) -> bool:
    """Write what came in; False for a redelivery of an event already accepted."""
    payload = verdict.payload or {}
    event_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    if verdict.accepted and await repo.accepted_event_exists(conn, event_id):
        return False
    await repo.insert_event(
        conn,
        event_id=str(event_id)[:128] if event_id else None,
        event_type=str(payload.get("type"))[:64] if payload.get("type") else None,
        status=RECEIVED if verdict.accepted else REJECTED,
        reason=verdict.reason,
        payload=verdict.payload,
        received_at=now,
    )
    return True
