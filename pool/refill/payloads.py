"""A refill as the CLI's `--json` and `GET /api/v1/address-pool/refill` show it (camelCase)."""

from __future__ import annotations

from typing import Any

from pool.kit.clock import isoformat_z_or_none
from pool.refill.repository import KeyRefill
from pool.refill.switch import RefillStatus


def refill_state(refill: KeyRefill) -> str:
    """on | off | at maximum (on, with no index left to derive)."""
    if not refill.enabled:
        return "off"
    return "on" if refill.remaining else "at maximum"


def refill_payload(refill: KeyRefill) -> dict[str, Any]:
    """The key's own values: `lowWater`/`batchSize` null when it follows the settings."""
    return {
        "protocol": refill.key.protocol,
        "fingerprint": refill.key.fingerprint,
        "branch": refill.branch,
        "enabled": refill.enabled,
        "state": refill_state(refill),
        "nextIndex": refill.next_index,
        "maxIndex": refill.max_index,
        "remaining": refill.remaining,
        "lowWater": refill.low_water,
        "batchSize": refill.batch_size,
        "refilledAt": isoformat_z_or_none(refill.refilled_at),
    }


def status_payload(found: RefillStatus) -> dict[str, Any]:
    """As `refill_payload`, with the values in force and the protocol's free addresses."""
    payload = refill_payload(found.refill)
    payload |= {"lowWater": found.low_water, "batchSize": found.batch_size, "free": found.free}
    return payload
