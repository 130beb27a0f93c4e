"""A pool that refills itself from a registered xpub (docs/importing.md, "Refill from the xpub").

An operator marks a registered key's branch for refill (`addrpool refill enable`). The worker
(`run_refill`) then compares, every `[refill] every`, the protocol's free addresses with the
key's low-water mark; below it, the key's next indices are derived (off the event loop) and
imported as one batch, audited as an import by `refill`. The range is claimed in the same
transaction as the insert (repository.claim_range): workers that planned the same range race
for it and only one imports it. `pool_low` is left as it is: it fires when the refill is off,
has reached its maximum index, or cannot keep up — the free addresses then fall below the
threshold anyway — and its details say which (pool.refill.shortfall).

Derivation belongs to the chains package (pool imports no sibling): callers hand it in.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.import_recovery import recover_imports
from pool.addresses.import_repository import ImportSource
from pool.addresses.importer import write_validated
from pool.addresses.xpub_import import derived_rows
from pool.alerts.engine import evaluate_pool
from pool.alerts.monitoring_repository import free_addresses, usable_addresses
from pool.alerts.rules import pool_low_bounds
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings, RefillSettings
from pool.kit.db import Database
from pool.kit.db_failures import log_failure
from pool.kit.import_lock import try_import_lock
from pool.kit.loop import run_every
from pool.refill import repository as repo
from pool.refill.repository import KeyRefill
from pool.vocabulary import ParsedAddress, Protocol

log = logging.getLogger("addrpool.refill")
REFILL_ACTOR = "refill"  # who the audit log says imported a refill's batch

# chains.hd.derive_from_key: (key text, protocol, branch, start, count) -> [(index, address)].
Derive = Callable[[str, Protocol, int, int, int], list[tuple[int, ParsedAddress]]]


@dataclass(frozen=True, slots=True)
class RefillOutcome:
    refill_id: int
    protocol: Protocol
    outcome: str  # refilled | exhausted | claimed_elsewhere | import_running
    start: int = 0
    end: int = 0  # exclusive
    imported: int = 0
    batch_id: int | None = None


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
