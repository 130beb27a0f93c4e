"""Evaluate the alert rules against the database and open or close episodes.

`PoolAlerts.changed(protocol)` is what a bind, unbind, import or archive calls: it returns at
once, and a task of the same process re-evaluates that protocol's pool-low rule moments later
(coalescing a burst of binds into one evaluation). `evaluate_all` is the timer's: every rule,
including those time alone can trigger (cooldowns ending, a silent watcher).

Opening an episode writes its transition (the hooks' outbox) and, for `pool_low`, the
`alert.address_pool_low` webhook event — all in one transaction with the alert itself. While
an episode is open each evaluation refreshes its value; a change of severity (`pool_low`
becoming critical as the pool empties, warning again as it refills) is a transition the hooks
hear of, and an escalated `pool_low` sends the webhook event again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts import monitoring_repository as monitoring
from pool.alerts import rules
from pool.alerts.repository import (
    Firing,
    firing_subjects,
    raise_alert,
    resolve_alert,
)
from pool.alerts.transition import Transition
from pool.alerts.webhook_rules import endpoint_failing_transitions, webhook_failure_transitions
from pool.chain_state.repository import load_cursors
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import AlertSettings
from pool.kit.db import Database
from pool.kit.db_failures import log_failure
from pool.kit.loop import run_every
from pool.refill.repository import refill_headroom
from pool.refill.shortfall import refill_shortfall
from pool.vocabulary import (
    POOL_EXHAUSTION,
    POOL_LOW,
    POOL_LOW_EVENT,
    PROTOCOLS,
    WATCHER_LAGGING,
    WATCHER_STALLED,
    AlertKind,
    Protocol,
)
from pool.webhooks.outbox import record_event

log = logging.getLogger("addrpool.alerts")
COALESCE_SECONDS = 0.05  # binds arriving this close together share one evaluation
# Once the pool was found well above its threshold, binds share an evaluation for this long:
# a bind then costs almost nothing in alerting, and a crossing is still seen within a second
# (the notifier adds its 0.25 s poll: within the 2 s an alert may take).
HEALTHY_COALESCE_SECONDS = 1.0


async def apply(db: Database, transitions: list[Transition], now: datetime) -> None:
    """Fire or resolve; a race lost to another process's identical firing is no error."""
    for change in transitions:
        if change.decision is None:
            continue
        try:
            async with db.write() as conn:
                await _apply_one(conn, change, now)
        except IntegrityError:
            log.debug("alert already opened elsewhere", extra={"subject": change.subject})


async def _apply_one(conn: AsyncConnection, change: Transition, now: datetime) -> None:
    if change.decision == "resolve":
        if await resolve_alert(conn, subject=change.subject, now=now, value=change.value):
            log.info("alert resolved", extra={"subject": change.subject, "value": change.value})
        return
    firing = Firing(change.kind, change.subject, change.severity, change.value, change.details)
    # A refresh was measured while the episode was open: if it resolved since, it stays so.
    may_open = change.decision == "fire"
    written = await raise_alert(conn, firing=firing, now=now, may_open=may_open)
    # Receivers hear that the pool is low, and again when it is empty; not when it refills.
    if change.kind == "pool_low" and written in ("fired", "escalated"):
        # PayIn's fields; why the refill did not help is the alert record's to tell.
        data = {k: v for k, v in change.details.items() if k != "refill"}
        await record_event(conn, type=POOL_LOW_EVENT, data=data, now=now)


# -- pool rules ------------------------------------------------------------------------------


async def pool_low_transition(
    conn: AsyncConnection, settings: AlertSettings, protocol: Protocol, now: datetime
) -> Transition:
    """After every bind: so the usual answer ("healthy, nothing to do") costs two indexed
    look-ups, and the pool is counted in full only when there is something to write."""
    subject = f"{POOL_LOW}:{protocol}"
    total = None
    if settings.percent_thresholds.get(protocol):
        total = await monitoring.usable_addresses(conn, protocol=protocol)
    bounds = rules.pool_low_bounds(settings, protocol, total or 0)
    probe = await monitoring.pool_low_probe(
        conn, protocol=protocol, now=now, up_to=bounds.count_cap, subject=subject
    )
    available, severity = probe.free, rules.pool_low_severity(probe.free)
    decision = rules.pool_low(available, bounds, firing=probe.firing)
    wait = _refresh_wait(probe, severity, now) if decision == "refresh" else 0.0
    if decision is None or wait > 0:
        healthy = not probe.firing and available >= bounds.count_cap
        return Transition(
            POOL_LOW, subject, severity, None, str(available), {}, healthy, recheck_in=wait
        )
    if total is None:
        total = await monitoring.usable_addresses(conn, protocol=protocol)
    if total == 0 and not await monitoring.any_address(conn, protocol=protocol):
        # Never imported: a protocol the operator does not use (as the pool summary says).
        # One whose addresses were all archived is in use, and empty.
        decision = "resolve" if probe.firing else None
    details: dict[str, Any] = {
        "protocol": protocol,
        "available": available,
        "total": total,
        "threshold": bounds.fire_below,
        "percentage": rules.percentage(available, total),
    }
    if decision != "resolve" and (refill := await refill_shortfall(conn, protocol)):
        details["refill"] = refill  # why the refill did not keep the pool up
    return Transition(POOL_LOW, subject, severity, decision, str(available), details)


def _refresh_wait(probe: monitoring.PoolLowProbe, severity: str, now: datetime) -> float:
    if probe.firing_severity is None or probe.last_fired_at is None:
        return 0.0
    return rules.refresh_wait(
        severity=severity,
        firing_severity=probe.firing_severity,
        last_fired_at=probe.last_fired_at,
        now=now,
    )


async def exhaustion_transition(
    conn: AsyncConnection, settings: AlertSettings, protocol: Protocol, now: datetime
) -> Transition:
    subject = f"{POOL_EXHAUSTION}:{protocol}"
    projected = await projected_exhaustion_at(conn, settings, protocol, now)
    firing = bool(await firing_subjects(conn, [subject]))
    shown = isoformat_z(projected) if projected else None
    return Transition(
        kind=POOL_EXHAUSTION,
        subject=subject,
        severity="warning",
        decision=rules.exhaustion(projected, now=now, settings=settings, firing=firing),
        value=shown or "never",
        details={"protocol": protocol, "projectedExhaustionAt": shown},
    )


async def projected_exhaustion_at(
    conn: AsyncConnection, settings: AlertSettings, protocol: Protocol, now: datetime
) -> datetime | None:
    """Free addresses, plus those the keys marked for refill may still derive, at the recent
    bind rate: a refilling pool runs out when its keys reach their maximum index."""
    available = await monitoring.free_addresses(conn, protocol=protocol, now=now)
    available += (await refill_headroom(conn))[protocol]
    window = settings.bind_rate_window
    binds = await monitoring.binds_since(conn, protocol=protocol, since=now - window)
    return rules.projected_exhaustion(available, binds, window, now)


# -- operational rules ---------------------------------------------------------------------


async def watcher_transitions(
    conn: AsyncConnection, settings: AlertSettings, watched: set[str], now: datetime
) -> list[Transition]:
    found = []
    stall = settings.watcher_stall_after.total_seconds()
    for cursor in await load_cursors(conn):
        if cursor.chain_id not in watched:
            continue
        lag = max(0, (cursor.head or cursor.block_number) - cursor.block_number)
        heard = max(filter(None, (cursor.head_at, cursor.updated_at)))
        silent = (now - heard).total_seconds()
        details = {"chainId": cursor.chain_id, "lag": lag, "silentSeconds": int(silent)}
        measures: tuple[tuple[AlertKind, float, float], ...] = (
            (WATCHER_LAGGING, lag, settings.watcher_lag_blocks),
            (WATCHER_STALLED, silent, stall),
        )
        for kind, value, limit in measures:
            subject = f"{kind}:{cursor.chain_id}"
            firing = bool(await firing_subjects(conn, [subject]))
            decision = rules.over_limit(value, limit, firing=firing)
            found.append(Transition(kind, subject, "critical", decision, str(int(value)), details))
    return found


# -- running them --------------------------------------------------------------------------


async def evaluate_pool(db: Database, settings: AlertSettings, protocol: Protocol) -> Transition:
    """The pool's evaluation, applied: `healthy` when there is nothing to do for a while."""
    now = utc_now()
    # On PostgreSQL without BEGIN/COMMIT: the usual evaluation is one statement.
    async with db.read() if db.is_sqlite else db.autocommit() as conn:
        change = await pool_low_transition(conn, settings, protocol, now)
    await apply(db, [change], now)
    return change


async def evaluate_all(db: Database, settings: AlertSettings, watched_chains: set[str]) -> None:
    """Every rule once: the timer's pass."""
    now = utc_now()
    changes: list[Transition] = []
    async with db.read() as conn:
        for protocol in PROTOCOLS:
            changes.append(await pool_low_transition(conn, settings, protocol, now))
            changes.append(await exhaustion_transition(conn, settings, protocol, now))
        changes += await watcher_transitions(conn, settings, watched_chains, now)
        changes += await webhook_failure_transitions(conn, settings, now)
        changes += await endpoint_failing_transitions(conn, settings, now)
    await apply(db, changes, now)


class PoolAlerts:
    """Re-evaluates a protocol's pool-low rule shortly after something changed its pool."""

    def __init__(self, db: Database, settings: AlertSettings) -> None:
        self.db = db
        self.settings = settings
        self._due: set[Protocol] = set()
        self._healthy: dict[Protocol, bool] = {}  # as the last evaluation found each pool
        self._rechecks: dict[Protocol, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._evaluating = False

    def changed(self, protocol: Protocol) -> None:
        """Cheap and synchronous: a bind pays for a set insert, not for the evaluation."""
        if not self.settings.enabled:
            return
        self._due.add(protocol)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._coalesce())
            self._wake.clear()
            due, self._due = self._due, set()
            self._evaluating = True
            try:
                await self._evaluate(due)
            finally:
                self._evaluating = False

    def busy(self) -> bool:
        """A change is waiting for its evaluation or being evaluated (what a caller that must
        see the outcome, such as a test, waits out)."""
        return bool(self._due) or self._evaluating

    async def _evaluate(self, due: set[Protocol]) -> None:
        for protocol in due:
            self._healthy[protocol] = False  # unknown until evaluated again
            try:
                change = await evaluate_pool(self.db, self.settings, protocol)
            except Exception as exc:
                log_failure(log, "pool alert evaluation failed", exc, {"protocol": protocol})
                continue
            self._healthy[protocol] = change.healthy
            if change.recheck_in > 0:
                self._recheck(protocol, change.recheck_in)

    def _recheck(self, protocol: Protocol, delay: float) -> None:
        """A firing episode's refresh was left for later: evaluate again then, so the value
        of the last bind in a burst is written too, not left to the timer's next pass."""
        if protocol not in self._rechecks:
            loop = asyncio.get_running_loop()
            self._rechecks[protocol] = loop.call_later(delay, self._recheck_due, protocol)

    def _recheck_due(self, protocol: Protocol) -> None:
        del self._rechecks[protocol]
        self.changed(protocol)

    def _coalesce(self) -> float:
        """Near or below the threshold every change counts; far above it, a second's worth."""
        if all(self._healthy.get(protocol, False) for protocol in self._due):
            return HEALTHY_COALESCE_SECONDS
        return COALESCE_SECONDS

    async def close(self) -> None:
        for handle in self._rechecks.values():
            handle.cancel()
        self._rechecks.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def run_rules(
    db: Database, settings: AlertSettings, watched_chains: set[str], stop: asyncio.Event
) -> None:
    """The timer: every rule every `evaluate_every`, first at once (a restart re-checks)."""
    if not settings.enabled:
        return

    async def evaluate() -> None:
        await evaluate_all(db, settings, watched_chains)

    await run_every(
        stop,
        evaluate,
        pause=settings.evaluate_every.total_seconds(),
        log=log,
        failure="alert rule evaluation failed; trying again",
    )
