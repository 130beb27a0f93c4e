"""A pool that refills itself from a registered xpub (docs/importing.md, "Refill from the xpub").

An operator marks a registered key's branch for refill (`addrpool refill enable`). The worker
(`run_refill`) then compares, every `[refill] every`, the protocol's free addresses with the
key's low-water mark; below it, the key's next indices are derived (off the event loop) and
imported as one batch, audited as an import by `refill`. The range is claimed in the same
transaction as the insert (repository.claim_range): workers that planned the same range race
for it and only one imports it. `pool_low` is left as it is: it fires when the refill is off,
has reached its maximum index, or cannot keep up — the free addresses then fall below the
threshold anyway.

Derivation belongs to the chains package (pool imports no sibling): callers hand it in.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.import_recovery import recover_imports
from pool.addresses.import_repository import ImportSource
from pool.addresses.importer import MAX_DERIVATION_INDEX, write_validated
from pool.addresses.xpub_import import derived_rows
from pool.alerts.engine import evaluate_pool
from pool.alerts.monitoring_repository import free_addresses, usable_addresses
from pool.alerts.rules import pool_low_bounds
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings, RefillSettings
from pool.kit.db import Database, log_failure
from pool.kit.errors import Conflict, NotFound, ValidationFailed
from pool.kit.import_lock import try_import_lock
from pool.kit.loop import run_every
from pool.refill import repository as repo
from pool.refill.repository import KeyRefill, RegisteredKey
from pool.vocabulary import ParsedAddress, Protocol
from pool.webhooks.events_repository import insert_audit

log = logging.getLogger("addrpool.refill")
REFILL_ACTOR = "refill"  # who the audit log says imported a refill's batch

# chains.hd.derive_from_key: (key text, protocol, branch, start, count) -> [(index, address)].
Derive = Callable[[str, Protocol, int, int, int], list[tuple[int, ParsedAddress]]]


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


@dataclass(frozen=True, slots=True)
class RefillOutcome:
    refill_id: int
    protocol: Protocol
    outcome: str  # refilled | exhausted | claimed_elsewhere | import_running
    start: int = 0
    end: int = 0  # exclusive
    imported: int = 0
    batch_id: int | None = None


# -- the operator's switch ------------------------------------------------------------------


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


# -- the worker's refill ---------------------------------------------------------------------


async def default_low_water(
    conn: AsyncConnection, protocol: Protocol, settings: RefillSettings, alerts: AlertSettings
) -> int:
    """The setting, else twice the level `pool_low` fires below (so the refill comes first)."""
    if protocol in settings.low_water:
        return settings.low_water[protocol]
    usable = await usable_addresses(conn, protocol=protocol)
    return 2 * pool_low_bounds(alerts, protocol, usable).fire_below


async def refill_pass(
    db: Database, *, settings: RefillSettings, alerts: AlertSettings, derive: Derive
) -> list[RefillOutcome]:
    """Every enabled key whose protocol is below its low-water mark refills once."""
    now = utc_now()
    async with db.read() as conn:
        # The refills before the counts: a refill committed before the first read is then in
        # both, so a worker never sees the new index with the old count (one more batch).
        refills = await repo.all_refills(conn, enabled_only=True)
        free: dict[Protocol, int] = {}
        low: dict[Protocol, int] = {}
        for protocol in {r.key.protocol for r in refills}:
            free[protocol] = await free_addresses(conn, protocol=protocol, now=now)
            low[protocol] = await default_low_water(conn, protocol, settings, alerts)
    outcomes = []
    for refill in refills:
        protocol = refill.key.protocol
        wanted = (refill.low_water or low[protocol]) - free[protocol]
        if wanted <= 0:
            continue
        outcome = await refill_key(db, refill, wanted=wanted, settings=settings, derive=derive)
        free[protocol] += outcome.imported
        outcomes.append(outcome)
    return outcomes


async def refill_key(
    db: Database, refill: KeyRefill, *, wanted: int, settings: RefillSettings, derive: Derive
) -> RefillOutcome:
    """Derive whole batches covering `wanted` addresses (within the maximum) and import them,
    if the range is still this refill's to take."""
    batch = refill.batch_size or settings.batch_size
    count = min(math.ceil(wanted / batch) * batch, refill.remaining)
    protocol = refill.key.protocol
    if count <= 0:
        return RefillOutcome(refill.id, protocol, "exhausted")
    start, end = refill.next_index, refill.next_index + count
    derived = await asyncio.to_thread(
        derive, refill.key.public_key, protocol, refill.branch, start, count
    )
    return await import_range(db, refill, derived, start=start, end=end)


async def import_range(
    db: Database,
    refill: KeyRefill,
    derived: Sequence[tuple[int, ParsedAddress]],
    *,
    start: int,
    end: int,
) -> RefillOutcome:
    """Claim [start, end) and import its addresses in one transaction; nothing if the range
    was claimed elsewhere first."""
    key, protocol = refill.key, refill.key.protocol
    validation = derived_rows(derived, key.public_key)
    source = ImportSource(f"refill:{key.fingerprint}/{refill.branch}/{start}-{end - 1}",
                          REFILL_ACTOR, "xpub")  # fmt: skip

    async def work(conn: AsyncConnection) -> RefillOutcome:
        now = utc_now()
        if not await repo.claim_range(conn, refill_id=refill.id, start=start, end=end, now=now):
            return RefillOutcome(refill.id, protocol, "claimed_elsewhere", start, end)
        report = await write_validated(
            conn, protocol=protocol, validation=validation, source=source, now=now,
            fingerprints={key.public_key: key.fingerprint},
        )  # fmt: skip
        return RefillOutcome(
            refill.id, protocol, "refilled", start, end, report.imported, report.batch_id
        )

    # SQLite: a staged import may hold rows of this range as `importing`; were it discarded
    # after this refill skipped them, those indices would never be imported. So not while one
    # runs (the next pass tries again), and not before what a crashed one left is cleared.
    async with try_import_lock(db) as free:
        if not free:
            return RefillOutcome(refill.id, protocol, "import_running", start, end)
        if db.is_sqlite:
            await recover_imports(db)
        return await db.run_write(work)


async def run_refill(
    db: Database,
    settings: RefillSettings,
    alerts: AlertSettings,
    derive: Derive,
    stop: asyncio.Event,
) -> None:
    """The worker's job: a refill pass every `every`; after a refill, the pool's alert rule
    at once (a firing `pool_low` resolves without waiting for the alerts' timer)."""
    exhausted: set[int] = set()

    async def one_pass() -> None:
        for outcome in await refill_pass(db, settings=settings, alerts=alerts, derive=derive):
            _log_outcome(outcome, exhausted)
            if outcome.imported and alerts.enabled:
                try:
                    await evaluate_pool(db, alerts, outcome.protocol)
                except Exception as exc:
                    log_failure(log, "pool alert evaluation failed", exc, {})

    await run_every(
        stop,
        one_pass,
        pause=settings.every.total_seconds(),
        log=log,
        failure="refill failed; trying again",
    )


def _log_outcome(outcome: RefillOutcome, exhausted: set[int]) -> None:
    """A refill at its maximum is told once (until it is raised), not every pass."""
    if outcome.outcome == "exhausted":
        if outcome.refill_id not in exhausted:
            exhausted.add(outcome.refill_id)
            log.warning(
                "a refill reached its maximum index: raise it (addrpool refill enable "
                "--max-index) or import more addresses",
                extra={"refill": outcome.refill_id, "protocol": outcome.protocol},
            )
        return
    exhausted.discard(outcome.refill_id)
    if outcome.outcome == "refilled":
        log.info(
            "pool refilled from its xpub",
            extra={
                "refill": outcome.refill_id,
                "protocol": outcome.protocol,
                "from_index": outcome.start,
                "to_index": outcome.end - 1,
                "imported": outcome.imported,
            },
        )
