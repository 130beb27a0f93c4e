"""Reconciliation compares the kept counts (the pool's, and deposits', deliveries' and orders'
by status) with a full count on each run (while `[reconcile] check_counts` is on): a corrupted
count is a `pool_count_mismatch`, alerted, and resolved by the first run that finds it right
again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from chains.checks.reconciler import reconcile
from pool.addresses.counts import recount
from pool.kit.config import ReconcileSettings, Settings
from pool.kit.db import Database
from pool.kit.tables import address_count, alert, status_count
from pool.monitoring.status_counts import recount as status_recount
from pool.reconciliation.pool_counts import POOL_COUNTS
from tests.fixtures.helpers import load_pool


def _settings(settings: Settings, *, check_counts: bool = True) -> Settings:
    """No chain watched: the run looks at the database alone."""
    reconcile_settings = ReconcileSettings(duty_cycle=1.0, check_counts=check_counts)
    return settings.model_copy(update={"chains": {}, "reconcile": reconcile_settings})


def reported(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in report["items"] if item["category"] == POOL_COUNTS]


async def firing(db: Database) -> list[str]:
    async with db.read() as conn:
        query = select(alert.c.subject).where(alert.c.state == "firing")
        return sorted(s for s in (await conn.scalars(query)) if POOL_COUNTS in s)


async def _corrupt(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(address_count)
            .where(address_count.c.protocol == "tron", address_count.c.status == "available")
            .values(n=address_count.c.n + 2)
        )


async def test_a_corrupted_count_is_reported_alerted_and_resolved_once_repaired(
    settings: Settings, db: Database
) -> None:
    await load_pool(db, "evm", 3)
    await load_pool(db, "tron", 1)  # one slot on either database: kept 1 + 2
    checking = _settings(settings)
    assert reported(await reconcile(checking, db)) == []

    await _corrupt(db)
    report = await reconcile(checking, db)
    [item] = reported(report)
    assert item["severity"] == "warning" and item["chainId"] == "pool"
    assert item["detail"] == (
        "tron available: kept count 3, full count 1 (addrpool pool recount --repair)"
    )
    assert report["counts"][POOL_COUNTS] == 1 and report["discrepancies"] == 1
    assert await firing(db) == [f"reconciliation:{POOL_COUNTS}:tron:available"]

    # A run that does not count leaves the episode as it is.
    unchecked = await reconcile(_settings(settings, check_counts=False), db)
    assert reported(unchecked) == [] and unchecked["alerts"]["resolved"] == 0
    assert await firing(db) != []

    async with db.write() as conn:
        await recount(conn)
    clean = await reconcile(checking, db)
    assert reported(clean) == [] and clean["alerts"]["resolved"] == 1
    assert await firing(db) == []


async def test_a_corrupted_status_count_is_reported_and_resolved_once_repaired(
    settings: Settings, db: Database
) -> None:
    checking = _settings(settings)
    async with db.write() as conn:  # a count no trigger wrote: deliveries nobody made
        await conn.execute(
            insert(status_count).values(subject="delivery", label="", status="failed", slot=0, n=3)
        )
    report = await reconcile(checking, db)
    [item] = reported(report)
    assert item["detail"] == (
        "delivery failed: kept count 3, full count 0 (addrpool pool recount --repair)"
    )
    assert await firing(db) == [f"reconciliation:{POOL_COUNTS}:delivery:failed"]
    async with db.write() as conn:
        await status_recount(conn)
    clean = await reconcile(checking, db)
    assert reported(clean) == [] and clean["alerts"]["resolved"] == 1
