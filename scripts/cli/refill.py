"""`addrpool refill enable|disable|status`: the per-key switch of the pool's refill from its
xpub (docs/importing.md, "Refill from the xpub"); the `[refill]` settings give the defaults."""

from __future__ import annotations

import argparse
import re
from typing import Any

from pool.kit.clock import isoformat_z_or_none
from pool.kit.config import load_settings
from pool.refill.payloads import refill_payload, refill_state, status_payload
from pool.refill.repository import KeyRefill
from pool.refill.switch import KeyChoice, RefillStatus, RefillValues, disable, enable, status
from scripts.cli.database import actor, opened_database
from scripts.cli.output import Output, table

# A BIP32 fingerprint (8 hex digits), or the 16-digit one a key without it was recorded with.
_FINGERPRINT = re.compile(r"^(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{16})$")


def key_choice(text: str, protocol: Any) -> KeyChoice:
    """An xpub/tpub (private keys refused, never echoed) or a key's fingerprint."""
    value = text.strip()
    if _FINGERPRINT.match(value):
        return KeyChoice(protocol, fingerprint=value.lower())
    from chains.hd import parse_extended_public_key  # the curve library only when needed

    return KeyChoice(protocol, public_key=parse_extended_public_key(value).serialize())


async def refill_enable(args: argparse.Namespace, out: Output) -> int:
    from chains.hd import derive_from_key

    choice = key_choice(args.key, args.protocol)
    settings = load_settings()
    values = RefillValues(args.next_index, args.max_index, args.low_water, args.batch)
    async with opened_database(settings) as db:
        refill = await enable(
            db, choice=choice, branch=args.branch, values=values, settings=settings.refill,
            derive=derive_from_key, actor=actor(),
        )  # fmt: skip
    out.result(refill_payload(refill), f"refill on: {_describe(refill)}")
    return 0


async def refill_disable(args: argparse.Namespace, out: Output) -> int:
    choice = key_choice(args.key, args.protocol)
    async with opened_database(load_settings()) as db:
        refill = await disable(db, choice=choice, branch=args.branch, actor=actor())
    out.result(refill_payload(refill), f"refill off: {_describe(refill)}")
    return 0


async def refill_status(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    async with opened_database(settings, existing=True) as db:
        found = await status(db, settings=settings.refill, alerts=settings.alerts)
    header = ["protocol", "fingerprint", "branch", "state", "next index", "max index",
              "low water", "batch", "free", "last refill"]  # fmt: skip
    rows = [_row(s) for s in found]
    text = table(rows, header) if rows else "no key is marked for refill (addrpool refill enable)"
    out.result([status_payload(s) for s in found], text)
    return 0


def _row(found: RefillStatus) -> list[str]:
    refill = found.refill
    numbers = (refill.branch, refill.next_index, refill.max_index, found.low_water,
               found.batch_size, found.free)  # fmt: skip
    branch, *rest = (str(n) for n in numbers)
    last = isoformat_z_or_none(refill.refilled_at) or "-"
    return [refill.key.protocol, refill.key.fingerprint, branch, refill_state(refill), *rest, last]


def _describe(refill: KeyRefill) -> str:
    return (
        f"{refill.key.protocol} key {refill.key.fingerprint}, branch {refill.branch}: next index "
        f"{refill.next_index}, maximum {refill.max_index} ({refill.remaining} left)"
    )
