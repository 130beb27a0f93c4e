"""The operator's switch on a key's refill (docs/importing.md, "Refill from the xpub"):
`addrpool refill enable|disable|status` and `GET /api/v1/address-pool/refill`. Enabling checks
the key, the branch and the values, and where a new refill starts; every change is audited.
The worker's passes are in pool.refill.service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.importer import MAX_DERIVATION_INDEX
from pool.alerts.monitoring_repository import free_addresses
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings, RefillSettings
from pool.kit.db import Database
from pool.kit.errors import Conflict, NotFound, ValidationFailed
from pool.refill import repository as repo
from pool.refill.repository import KeyRefill, RegisteredKey
from pool.refill.service import Derive, default_low_water
from pool.vocabulary import Protocol
from pool.webhooks.events_repository import insert_audit


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """The key an operator names: its xpub (already parsed by the caller: never a private
    key) or its BIP32 fingerprint."""

    protocol: Protocol
    public_key: str | None = None
    fingerprint: str | None = None

    def describe(self) -> str:
        shown = f"fingerprint {self.fingerprint}" if self.fingerprint else "this xpub"
        return f"{self.protocol} key with {shown}"


@dataclass(frozen=True, slots=True)
class RefillValues:
    """What an operator may set on `enable`; None keeps the current value or the default."""

    next_index: int | None = None
    max_index: int | None = None
    low_water: int | None = None
    batch_size: int | None = None


@dataclass(frozen=True, slots=True)
class RefillStatus:
    refill: KeyRefill
    low_water: int  # in force: the key's own or the [refill] default
    batch_size: int
    free: int  # the protocol's free addresses now


async def enable(
    db: Database,
    *,
    choice: KeyChoice,
    branch: int,
    values: RefillValues,
    settings: RefillSettings,
    derive: Derive,
    actor: str,
) -> KeyRefill:
    """Turn the key's branch's refill on (created, or switched on again with new values)."""
    _check_values(branch, values)
    async with db.read() as conn:
        key = await _one_key(conn, choice)
        current = await repo.refill_of(conn, key_id=key.id, branch=branch)
        highest = None if current else await repo.highest_index(conn, key_id=key.id)
    next_index = await _starting_index(current, values, highest, key, branch, derive)
    max_index = _first(values.max_index, current.max_index if current else None, settings.max_index)
    if max_index < next_index:
        raise ValidationFailed(
            f"the maximum index {max_index} is below the next index to derive, {next_index}"
        )
    low_water = _or_current(values.low_water, current.low_water if current else None)
    batch_size = _or_current(values.batch_size, current.batch_size if current else None)
    try:
        return await _write_enabled(
            db, key=key, branch=branch, current=current, next_index=next_index,
            max_index=max_index, low_water=low_water, batch_size=batch_size, actor=actor,
        )  # fmt: skip
    except IntegrityError as exc:  # another operator enabled it meanwhile
        raise Conflict("the refill was enabled meanwhile: run the command again") from exc


async def _write_enabled(
    db: Database,
    *,
    key: RegisteredKey,
    branch: int,
    current: KeyRefill | None,
    next_index: int,
    max_index: int,
    low_water: int | None,
    batch_size: int | None,
    actor: str,
) -> KeyRefill:
    now = utc_now()
    async with db.write() as conn:
        if current is None:
            await repo.insert_refill(
                conn, key_id=key.id, branch=branch, next_index=next_index, max_index=max_index,
                low_water=low_water, batch_size=batch_size, now=now,
            )  # fmt: skip
        else:
            await repo.update_refill(
                conn, refill_id=current.id, enabled=True, max_index=max_index,
                low_water=low_water, batch_size=batch_size, now=now,
            )  # fmt: skip
        refill = await repo.refill_of(conn, key_id=key.id, branch=branch)
        assert refill is not None  # noqa: S101 - written just above, in this transaction
        await _audit(conn, "refill.enable", refill, actor=actor, now=now)
    return refill


async def disable(db: Database, *, choice: KeyChoice, branch: int, actor: str) -> KeyRefill:
    """Turn it off: nothing more is derived; the addresses imported stay, and so does the
    next index (switching it on again carries on from there)."""
    async with db.write() as conn:
        key = await _one_key(conn, choice)
        current = await repo.refill_of(conn, key_id=key.id, branch=branch)
        if current is None:
            raise NotFound(f"the {choice.describe()} has no refill on branch {branch}")
        now = utc_now()
        await repo.update_refill(
            conn, refill_id=current.id, enabled=False, max_index=current.max_index,
            low_water=current.low_water, batch_size=current.batch_size, now=now,
        )  # fmt: skip
        refill = await repo.refill_of(conn, key_id=key.id, branch=branch)
        assert refill is not None  # noqa: S101 - read just above, in this transaction
        await _audit(conn, "refill.disable", refill, actor=actor, now=now)
    return refill


async def status(
    db: Database, *, settings: RefillSettings, alerts: AlertSettings
) -> list[RefillStatus]:
    now = utc_now()
    async with db.read() as conn:
        refills = await repo.all_refills(conn)
        free = {r.key.protocol: 0 for r in refills}
        low = {}
        for protocol in free:
            free[protocol] = await free_addresses(conn, protocol=protocol, now=now)
            low[protocol] = await default_low_water(conn, protocol, settings, alerts)
    return [
        RefillStatus(
            refill,
            refill.low_water or low[refill.key.protocol],
            refill.batch_size or settings.batch_size,
            free[refill.key.protocol],
        )
        for refill in refills
    ]


def _check_values(branch: int, values: RefillValues) -> None:
    if not 0 <= branch <= MAX_DERIVATION_INDEX:
        raise ValidationFailed(f"the branch must be from 0 to {MAX_DERIVATION_INDEX}")
    for name, value in (("next index", values.next_index), ("maximum index", values.max_index)):
        if value is not None and not 0 <= value <= MAX_DERIVATION_INDEX:
            raise ValidationFailed(f"the {name} must be from 0 to {MAX_DERIVATION_INDEX}")
    for name, value in (("low-water mark", values.low_water), ("batch size", values.batch_size)):
        if value is not None and not 1 <= value <= 100_000:
            raise ValidationFailed(f"the {name} must be from 1 to 100000")


def _first(*values: int | None) -> int:
    return next(v for v in values if v is not None)


def _or_current(given: int | None, current: int | None) -> int | None:
    return given if given is not None else current


async def _one_key(conn: AsyncConnection, choice: KeyChoice) -> RegisteredKey:
    keys = await repo.registered_keys(
        conn, protocol=choice.protocol, public_key=choice.public_key,
        fingerprint=choice.fingerprint,
    )  # fmt: skip
    if not keys:
        raise NotFound(
            f"no registered {choice.describe()}: import from it first "
            f"(addrpool import --xpub … --protocol {choice.protocol})"
        )
    if len(keys) > 1:
        raise Conflict(f"several {choice.protocol} keys have that fingerprint: name the xpub")
    return keys[0]


async def _starting_index(
    current: KeyRefill | None,
    values: RefillValues,
    highest: tuple[int, str] | None,
    key: RegisteredKey,
    branch: int,
    derive: Derive,
) -> int:
    if current is None:
        if values.next_index is not None:
            return values.next_index
        return await _next_after(highest, key=key, branch=branch, derive=derive)
    if values.next_index is not None:
        raise ValidationFailed(
            f"this refill already has its next index, {current.next_index}, and only a refill "
            "moves it (other indices: addrpool import --xpub … --start N)"
        )
    return current.next_index


async def _next_after(
    highest: tuple[int, str] | None, *, key: RegisteredKey, branch: int, derive: Derive
) -> int:
    """After the key's highest imported index — once that address is shown to derive on this
    branch: addresses do not record their branch, and refilling another branch's indices would
    skip or repeat addresses."""
    if highest is None:
        return 0
    index, hex20 = highest
    derived = await asyncio.to_thread(derive, key.public_key, key.protocol, branch, index, 1)
    if derived[0][1].hex20 != hex20:
        raise ValidationFailed(
            f"the key's address at index {index} does not derive on branch {branch}: "
            "name its branch, or where to start with --next-index"
        )
    return index + 1


async def _audit(
    conn: AsyncConnection, action: str, refill: KeyRefill, *, actor: str, now: datetime
) -> None:
    await insert_audit(
        conn,
        actor=actor,
        action=action,
        subject=f"key_refill:{refill.id}",
        details={
            "protocol": refill.key.protocol,
            "fingerprint": refill.key.fingerprint,
            "branch": refill.branch,
            "nextIndex": refill.next_index,
            "maxIndex": refill.max_index,
            "lowWater": refill.low_water,
            "batchSize": refill.batch_size,
        },
        now=now,
    )
