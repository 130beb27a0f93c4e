"""Why a pool marked for refill is low anyway: what a firing `pool_low` says about the refill,
so that the operator reading the alert knows what to do (docs/importing.md, Refill).

With a working refill the pool is topped up below its low-water mark (by default twice the
alert's threshold), so `pool_low` fires only when, for every key of the protocol marked for
refill, one of these holds — checked in this order, the first that explains the shortfall:

- `not_keeping_up`: a refill is on and has indices left, yet the pool fell below the
  threshold: binds outpace a refill every `every`, or no worker runs the refills;
- `max_index_reached`: the refills that are on have derived up to their maximum index;
- `refill_off`: every refill of the protocol is switched off.

A protocol without any key marked for refill has no refill to explain: no details.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.clock import isoformat_z_or_none
from pool.refill.repository import KeyRefill, all_refills
from pool.vocabulary import Protocol

NOT_KEEPING_UP = "not_keeping_up"
MAX_INDEX_REACHED = "max_index_reached"
REFILL_OFF = "refill_off"


async def refill_shortfall(conn: AsyncConnection, protocol: Protocol) -> dict[str, Any] | None:
    """`details.refill` of a firing `pool_low`: the reason, what to do, and the keys."""
    refills = [r for r in await all_refills(conn) if r.key.protocol == protocol]
    if not refills:
        return None
    reason, action = explain(protocol, refills)
    return {"reason": reason, "action": action, "keys": [_key(r) for r in refills]}


def explain(protocol: Protocol, refills: list[KeyRefill]) -> tuple[str, str]:
    on = [r for r in refills if r.enabled]
    room = [r for r in on if r.remaining]
    if room:
        return NOT_KEEPING_UP, (
            "the refill is on but did not keep up: check that an `addrpool worker` (or `serve`) "
            "is running, and raise the low-water mark or the batch size so that one refill "
            f"covers the binds of one `[refill] every` ({_enable(room, protocol)} "
            "--low-water N --batch N)"
        )
    if on:
        return MAX_INDEX_REACHED, (
            f"the refill reached its maximum index: raise it ({_enable(on, protocol)} "
            "--max-index N) or import more addresses"
        )
    return REFILL_OFF, (
        f"the refill is off: switch it on ({_enable(refills, protocol)}) or import more addresses"
    )


def _enable(refills: list[KeyRefill], protocol: Protocol) -> str:
    """The command to run, naming the key when there is one to name."""
    keys = {r.key.fingerprint for r in refills}
    key = keys.pop() if len(keys) == 1 else "KEY"
    branches = {r.branch for r in refills}
    branch = f" --branch {branches.pop()}" if len(branches) == 1 and len(refills) == 1 else ""
    return f"`addrpool refill enable {key} --protocol {protocol}{branch}`"


def _key(refill: KeyRefill) -> dict[str, Any]:
    return {
        "fingerprint": refill.key.fingerprint,
        "branch": refill.branch,
        "enabled": refill.enabled,
        "nextIndex": refill.next_index,
        "maxIndex": refill.max_index,
        "lowWater": refill.low_water,  # null: the [refill] setting
        "batchSize": refill.batch_size,
        "refilledAt": isoformat_z_or_none(refill.refilled_at),
    }
