"""What an interrupted SQLite import left behind: finished if it had committed, removed if not.

The batch row is the truth (pool.addresses.staged_import): a `committed` batch's rows are the
pool's, and those still `importing` are handed over; an `importing` batch whose importer no
longer holds the import lock (pool.kit.import_lock) died before it committed, and its rows,
master keys and batch are removed. Run by whoever takes the lock: every import before it writes,
and `serve` at start and then every RECOVERY_SECONDS (a killed `addrpool import` beside a running
server is cleaned up without a restart).
"""

from __future__ import annotations

import asyncio
import logging

from pool.addresses import import_repository as repo
from pool.addresses.staged_import import discard, finish, hand_over
from pool.kit.db import Database
from pool.kit.import_lock import try_import_lock
from pool.kit.loop import run_every
from pool.vocabulary import BATCH_COMMITTED

log = logging.getLogger("addrpool.import")
RECOVERY_SECONDS = 30.0


async def recover_imports(db: Database) -> int:
    """Finish or remove every unfinished batch; the caller holds the import lock (SQLite), so
    none of them has a live importer. Returns how many batches it dealt with."""
    async with db.read() as conn:
        unfinished = await repo.unfinished_batches(conn)
    for batch in unfinished:
        context = {"batch": batch.id, "protocol": batch.protocol}
        if batch.status == BATCH_COMMITTED:
            handed = await hand_over(db, batch_id=batch.id)
            await finish(db, batch_id=batch.id, imported=batch.imported)
            log.warning(
                "finished an import interrupted after it committed: %d address(es) made available",
                handed,
                extra=context,
            )
        else:
            removed = await discard(
                db, batch_id=batch.id, protocol=batch.protocol, created_at=batch.created_at
            )
            log.warning(
                "removed an import interrupted before it committed: %d address(es) that were "
                "never the pool's",
                removed,
                extra=context,
            )
    return len(unfinished)


async def recover_if_no_import_runs(db: Database) -> int:
    """`recover_imports` unless an import holds the lock (it recovered before it began, and its
    own batch is not abandoned). A cheap look first: usually nothing is unfinished."""
    if not db.is_sqlite:
        return 0  # PostgreSQL writes an import in one transaction: nothing is left half done
    async with db.read() as conn:
        if not await repo.unfinished_batches(conn):
            return 0
    async with try_import_lock(db) as free:
        return await recover_imports(db) if free else 0


async def run_import_recovery(db: Database, stop: asyncio.Event) -> None:
    """`serve`'s worker: recover at start, then look again every RECOVERY_SECONDS."""
    if not db.is_sqlite:
        return
    await run_every(
        stop,
        lambda: recover_if_no_import_runs(db),
        pause=RECOVERY_SECONDS,
        log=log,
        failure="recovering an interrupted import failed; will retry",
    )
