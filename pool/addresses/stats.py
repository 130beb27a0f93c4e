"""The pool at a glance, per protocol: free, bound, allocated to orders, cooling down, archived."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.counts import count_by_state
from pool.alerts.rules import pool_low_bounds, projected_exhaustion
from pool.bindings.bind_hours import BindHours
from pool.bindings.hours_repository import binds_in_ranges
from pool.kit.config import AlertSettings
from pool.refill.repository import refill_headroom
from pool.vocabulary import ADDRESS_STATES, PROTOCOLS, Protocol


@dataclass(frozen=True, slots=True)
class PoolSummary:
    protocol: Protocol
    total: int
    available: int
    bound: int
    allocated: int  # to pending orders: taken, as bound ones are
    cooling_down: int
    archived: int
    threshold: int
    # At the bind rate of the alert settings' window, counting what the keys marked for refill
    # may still derive (pool.refill); None when nobody binds.
    projected_exhaustion_at: datetime | None = None

    @property
    def in_use(self) -> bool:
        """A protocol with no address ever imported (archived ones count) is one the operator
        does not use: never "below threshold", as `pool_low` never fires for it."""
        return self.total > 0

    @property
    def below_threshold(self) -> bool:
        return self.in_use and self.available < self.threshold


async def summarize(
    conn: AsyncConnection,
    *,
    now: datetime,
    alerts: AlertSettings | None = None,
    bind_hours: BindHours | None = None,
) -> list[PoolSummary]:
    """`threshold` is what the pool-low alert fires below (absolute or percentage rule).

    Reads the kept counts (pool.addresses.counts), not the table: a few dozen rows. The bind
    rate's window is counted through `bind_hours` when the process keeps one (its settled
    hours remembered), else whole."""
    rules = alerts or AlertSettings()
    counts = await count_by_state(conn, now=now)
    window = rules.bind_rate_window
    binds_each = await _binds_since(conn, since=now - window, now=now, bind_hours=bind_hours)
    headroom = await refill_headroom(conn)
    summaries = []
    for protocol in PROTOCOLS:
        of = {state: counts.get((protocol, state), 0) for state in ADDRESS_STATES}
        usable = sum(of.values()) - of["archived"]
        binds = binds_each[protocol]
        summaries.append(
            PoolSummary(
                protocol=protocol,
                total=sum(of.values()),
                available=of["available"],
                bound=of["bound"],
                allocated=of["allocated"],
                cooling_down=of["cooling_down"],
                archived=of["archived"],
                threshold=pool_low_bounds(rules, protocol, usable).fire_below,
                projected_exhaustion_at=projected_exhaustion(
                    of["available"] + headroom[protocol], binds, window, now
                ),
            )
        )
    return summaries


async def _binds_since(
    conn: AsyncConnection, *, since: datetime, now: datetime, bind_hours: BindHours | None
) -> dict[Protocol, int]:
    if bind_hours is not None:
        return await bind_hours.since_each(conn, since=since, now=now)
    counted = await binds_in_ranges(conn, [(since, None)])
    return {protocol: counted[(protocol, 0)] for protocol in PROTOCOLS}
