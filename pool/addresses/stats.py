"""The pool at a glance, per protocol: free, bound, allocated to orders, cooling down, archived."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.counts import count_by_state
from pool.alerts.monitoring_repository import binds_since_each
from pool.alerts.rules import pool_low_bounds, projected_exhaustion
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
    conn: AsyncConnection, *, now: datetime, alerts: AlertSettings | None = None
) -> list[PoolSummary]:
    """`threshold` is what the pool-low alert fires below (absolute or percentage rule).

    Reads the kept counts (pool.addresses.counts), not the table: a few dozen rows."""
    rules = alerts or AlertSettings()
    counts = await count_by_state(conn, now=now)
    window = rules.bind_rate_window
    binds_each = await binds_since_each(conn, since=now - window)
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
