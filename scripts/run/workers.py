"""Every background worker of a process: chain watchers, webhook delivery, reconciliation,
alert rules and the hooks that carry alerts, the pool's refill from its xpubs, order expiry,
the kept status counts' compaction (PostgreSQL) and (SQLite) the recovery of interrupted
imports.

`serve` runs them beside the API; `addrpool worker` runs them alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pool.addresses.import_recovery import run_import_recovery
from pool.alerts.engine import run_rules
from pool.alerts.notifier import AlertNotifier
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.monitoring.status_counts import run_compaction
from pool.orders.expiry import run_expiry
from pool.refill.service import run_refill
from pool.webhooks.delivery import DeliveryWorker


async def run_workers(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    # web3 takes about a second to import: only processes that watch chains pay for it.
    from chains.checks.reconciler import run_reconciler
    from chains.hd import derive_from_key
    from chains.presets import watched_chains
    from chains.watch.runner import run_watchers

    watched = {chain.chain_id for chain in watched_chains(settings)}
    workers = [
        run_watchers(settings, db, stop),
        DeliveryWorker(db, settings).run(stop),
        run_reconciler(settings, db, stop),
        run_rules(db, settings.alerts, watched, stop),
        run_refill(db, settings.refill, settings.alerts, derive_from_key, stop),
        AlertNotifier(db, settings.alerts).run(stop),
        run_expiry(db, settings.orders, stop),
        run_import_recovery(db, stop),
        run_compaction(db, stop),
    ]
    if settings.binding_backend == "payin":
        from chains.checks.upstream_check import UpstreamChecker

        workers.append(UpstreamChecker(settings, db).run(stop))
    await asyncio.gather(*workers)


@contextlib.asynccontextmanager
async def workers_running(settings: Settings, db: Database) -> AsyncIterator[None]:
    """On exit: the batch in hand commits, sends in flight finish, nothing new starts."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(settings, db, stop))
    try:
        yield
    finally:
        stop.set()
        await task
