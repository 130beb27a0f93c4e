"""One reconciliation run, and the worker that runs it on an interval (`serve`, `worker`).

A run reads what addrpool recorded and announced since the window's start, re-reads the most
recent deposits from each chain, repairs what it safely can (failed deliveries re-enqueued a
bounded number of times, a missing `deposit.confirmed` written, a dropped confirmed deposit
reverted, a hole in coverage rescanned), raises or resolves alert records, and stores the
report for the API. On PostgreSQL a session advisory lock lets one run at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chains.checks.audit import ChainAudit, audit_chain
from chains.endpoints import EndpointPool
from chains.presets import ChainConfig, watched_chains
from chains.rpc import RpcClient
from pool.addresses.counts import full_count_mismatches
from pool.kit import locks
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import ReconcileSettings, Settings
from pool.kit.db import Database
from pool.kit.errors import ChainUnavailable, ValidationFailed
from pool.kit.loop import run_every
from pool.kit.pacing import Pacer
from pool.monitoring import status_counts
from pool.orders import link_inventory_repository as link_inventory
from pool.orders import reconcile_repository as orders_repo
from pool.reconciliation import orders as order_checks
from pool.reconciliation import repository as repo
from pool.reconciliation import service as core
from pool.reconciliation.pool_counts import POOL_SCOPE, check_pool_counts, check_status_counts
from pool.upstream import repository as upstream_repo

log = logging.getLogger("addrpool.reconcile")
LOCK_KEY = 0x61647270_7265636E  # "adrp" "recn": one reconciliation at a time on PostgreSQL


@dataclass(slots=True)
class Run:
    started_at: datetime
    since: datetime
    chains: list[ChainConfig]
    deposits: list[repo.LedgerDeposit] = field(default_factory=list)  # those still open
    window_size: int = 0  # every deposit of the window, settled ones included
    orders_checked: int = 0  # completed and expired orders created within the window
    findings: list[core.Finding] = field(default_factory=list)
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)
    counts_checked: bool = False  # the pool's kept counts against a full count


async def reconcile(
    settings: Settings,
    db: Database,
    *,
    since: datetime | None = None,
    chain_ids: Sequence[str] | None = None,
    duty_cycle: float | None = None,
) -> dict[str, Any]:
    """Run once and return the stored report, as the API shows it.

    The run rests between its steps (never inside a transaction) to keep busy at most
    `duty_cycle` of the time, `[reconcile] duty_cycle` unless given (pool.kit.pacing).
    """
    started = utc_now()
    pacer = Pacer(duty_cycle or settings.reconcile.duty_cycle)
    run = Run(started, since or started - settings.reconcile.window, _chains(settings, chain_ids))
    scope = [c.chain_id for c in run.chains]
    grace = settings.reconcile.grace
    async with db.read() as conn:
        run.deposits = await repo.deposits_to_check(conn, since=run.since, chain_ids=scope)
        run.window_size = await repo.count_since(conn, since=run.since, chain_ids=scope)
        due = core.due_for_acknowledgement(run.deposits, now=started, grace=grace)
        announced = await repo.confirmed_announcements(
            conn, deposit_ids=[d.id for d in due], since=_earliest_confirmation(due, run.since)
        )
    ledger_check = core.check_ledger(
        run.deposits,
        announced,
        now=started,
        grace=settings.reconcile.grace,
        stuck_after=_stuck_after(settings.reconcile, run.chains),
    )
    run.findings.extend(ledger_check.findings)
    await pacer.rest()
    if settings.binding_backend == "payin":
        run.findings.extend(await _upstream_findings(settings, db, run))
    for chain in run.chains:
        audit = await _audit_with_failover(chain, db, run.since, settings.reconcile, pacer)
        run.findings.extend(audit.findings)
        run.audits[chain.chain_id] = audit.view()
    await pacer.rest()
    # After the chain re-read: its reverts are in the ledger, its disputes known.
    ledger_check.unacknowledged_events.extend(await _order_findings(db, run, grace))
    await pacer.rest()
    if settings.reconcile.check_counts:
        await _pool_count_findings(db, run)
        await pacer.rest()
    return await _repair_and_store(db, run, ledger_check, settings.reconcile, pacer)


async def _order_findings(db: Database, run: Run, grace: timedelta) -> list[int]:
    """The window's ended orders and unacknowledged order events; returns the events whose
    failed deliveries may be sent again."""
    scope = [c.chain_id for c in run.chains]
    disputed = order_checks.disputed_deposits(run.findings)
    async with db.read() as conn:
        run.orders_checked = await orders_repo.count_ended(conn, since=run.since, chain_ids=scope)
        orders = await orders_repo.ended_orders(
            conn, since=run.since, chain_ids=scope, disputed=sorted(disputed)
        )
        transfers = await orders_repo.paid_transfers(conn, [o.id for o in orders])
        announcements = await orders_repo.unacknowledged_order_events(
            conn, since=run.since, created_before=run.started_at - grace
        )
        links = await link_inventory.miscounted_links(conn)
    run.findings.extend(order_checks.check_orders(orders, transfers, disputed=disputed))
    run.findings.extend(order_checks.check_link_inventory(links))
    events = order_checks.check_order_events(announcements, chain_ids=set(scope))
    run.findings.extend(events.findings)
    return events.failed_events


async def _pool_count_findings(db: Database, run: Run) -> None:
    """The kept counts against a full count, each kind in one statement (one snapshot: no
    false alarm)."""
    async with db.read() as conn:
        mismatches = await full_count_mismatches(conn)
        status_mismatches = await status_counts.full_count_mismatches(conn)
    run.findings.extend(check_pool_counts(mismatches))
    run.findings.extend(check_status_counts(status_mismatches))
    run.counts_checked = True


def _earliest_confirmation(due: Sequence[repo.LedgerDeposit], fallback: datetime) -> datetime:
    return min((d.confirmed_at for d in due if d.confirmed_at is not None), default=fallback)


async def _upstream_findings(settings: Settings, db: Database, run: Run) -> list[core.Finding]:
    async with db.read() as conn:
        unannounced = await upstream_repo.credited_unannounced(
            conn,
            since=run.since,
            confirmed_before=run.started_at - settings.upstream_grace,
            chain_ids=[c.chain_id for c in run.chains],
        )
        unresolved = await upstream_repo.unresolved_events(conn, since=run.since)
    return core.check_upstream(unannounced, unresolved)


def _chains(settings: Settings, chain_ids: Sequence[str] | None) -> list[ChainConfig]:
    watched = {c.chain_id: c for c in watched_chains(settings)}
    if chain_ids is None:
        return list(watched.values())
    unknown = [c for c in chain_ids if c not in watched]
    if unknown:
        raise ValidationFailed(f"not a watched chain: {', '.join(unknown)}")
    return [watched[c] for c in chain_ids]


def _stuck_after(
    settings: ReconcileSettings, chains: Sequence[ChainConfig]
) -> dict[str, timedelta]:
    return {
        c.chain_id: max(settings.stuck_after, timedelta(seconds=3 * c.confirmations * c.block_time))
        for c in chains
    }


async def _audit_with_failover(
    chain: ChainConfig, db: Database, since: datetime, settings: ReconcileSettings, pacer: Pacer
) -> ChainAudit:
    async def audit(client: RpcClient) -> ChainAudit:
        return await audit_chain(
            chain, db, client, since=since, chain_reads=settings.chain_reads, pacer=pacer
        )

    async with EndpointPool.for_chain(chain) as endpoints:
        try:
            return await endpoints.serve(audit)
        except ChainUnavailable:
            # The report is by chain already: its error names the endpoints' troubles only.
            failure = f"no RPC endpoint could serve: {endpoints.troubles()}"
            log.error("chain not verified", extra={"chain": chain.chain_id, "error": failure})
            return ChainAudit(chain.chain_id, error=failure)


async def _repair_and_store(
    db: Database,
    run: Run,
    ledger_check: core.LedgerCheck,
    settings: ReconcileSettings,
    pacer: Pacer,
) -> dict[str, Any]:
    async with db.write() as conn:
        now = utc_now()
        requeued = await repo.requeue_failed(
            conn,
            event_seqs=ledger_check.unacknowledged_events,
            max_requeues=settings.max_requeues,
            limit=settings.requeue_limit,
            now=now,
        )
        announced = await core.announce_confirmed(conn, ledger_check.unannounced, now)
        alerts = await core.sync_alerts(
            conn, run.findings, chains=_scopes(run), since=run.since, now=now
        )
        tally = core.counts(run.findings)
        summary = {
            "chains": run.audits,
            "depositsChecked": run.window_size,
            "ordersChecked": run.orders_checked,
            "counts": tally,
            "discrepancies": core.discrepancies(tally),
            "repairs": {
                "requeuedDeliveries": len(requeued),
                "announced": announced,
                "reverted": sum(a["reverted"] for a in run.audits.values()),
                "rescannedRanges": sum(len(a["rescanned"]) for a in run.audits.values()),
            },
            "alerts": {"fired": alerts.fired, "resolved": alerts.resolved},
            "durationMs": int((now - run.started_at).total_seconds() * 1000),
            # Of which resting between steps, so as not to slow binds (`[reconcile] duty_cycle`).
            "restedMs": int(pacer.rested * 1000),
        }
        report_id = await repo.save_report(
            conn,
            started_at=run.started_at,
            finished_at=now,
            since=run.since,
            summary=summary,
            items=core.report_items(run.findings),
        )
        stored = await repo.load_report(conn, report_id)
    _log_summary(summary, run)
    return core.report_view(stored or {})


def _scopes(run: Run) -> set[str]:
    """What this run looked at again: its chains, and the pool's counts if it checked them."""
    return {c.chain_id for c in run.chains} | ({POOL_SCOPE} if run.counts_checked else set())


def _log_summary(summary: dict[str, Any], run: Run) -> None:
    level = logging.WARNING if summary["discrepancies"] else logging.INFO
    log.log(
        level,
        "reconciliation finished",
        extra={
            "since": isoformat_z(run.since),
            "deposits": summary["depositsChecked"],
            "discrepancies": summary["discrepancies"],
            "counts": {k: v for k, v in summary["counts"].items() if v},
            "duration_ms": summary["durationMs"],
        },
    )


async def run_reconciler(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    """Reconcile every `interval` until stopped; a failed run is logged and tried next time."""
    if not settings.reconcile.enabled or not watched_chains(settings):
        return
    await run_every(
        stop,
        lambda: _reconcile_if_first(settings, db),
        pause=settings.reconcile.interval.total_seconds(),
        pause_first=True,
        log=log,
        failure="reconciliation failed; will retry at the next interval",
    )


async def _reconcile_if_first(settings: Settings, db: Database) -> None:
    """One run, unless another worker's is under way (it holds the lock)."""
    began = time.monotonic()
    try:
        async with locks.try_holding(db, LOCK_KEY) as mine:
            if mine:
                await reconcile(settings, db)
    finally:
        log.debug("reconciliation took", extra={"seconds": round(time.monotonic() - began, 3)})
