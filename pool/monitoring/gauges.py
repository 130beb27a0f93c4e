"""The gauges a metrics scrape reads from the database: pool, deposits, watchers, deliveries,
alerts. Read per scrape, never kept in memory: every process would hold a different, stale copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.stats import PoolSummary, summarize
from pool.alerts.repository import count_firing_by_kind
from pool.bindings.bind_hours import BindHours
from pool.chain_state.repository import Cursor, load_cursors
from pool.kit.config import AlertSettings
from pool.monitoring.status_counts import kept_status_counts
from pool.vocabulary import ADDRESS_STATES, DELIVERY_STATUSES, DEPOSIT_STATUSES, ORDER_STATUSES


@dataclass(frozen=True, slots=True)
class DatabaseSnapshot:
    """What one scrape read from the database."""

    pool: Sequence[PoolSummary]
    deposits: dict[tuple[str, str], int]  # (chain id, status) → count
    cursors: Sequence[Cursor]
    deliveries: dict[str, int]  # status → count
    alerts_firing: dict[str, int]  # kind → firing count (0 for kinds that fired before)
    orders: dict[str, int]  # order status → count


async def read_snapshot(
    conn: AsyncConnection,
    *,
    now: datetime,
    alerts: AlertSettings | None = None,
    bind_hours: BindHours | None = None,
) -> DatabaseSnapshot:
    """Kept counts and small tables: nothing here grows with the pool or the history (the
    bind rate's window with the hours `bind_hours` remembers)."""
    kept = await kept_status_counts(conn)
    return DatabaseSnapshot(
        pool=await summarize(conn, now=now, alerts=alerts, bind_hours=bind_hours),
        deposits=kept.deposits,
        cursors=await load_cursors(conn),
        deliveries=kept.deliveries,
        alerts_firing=await count_firing_by_kind(conn),
        orders=kept.orders,
    )


class SnapshotCollector:
    """Exposes a `DatabaseSnapshot` as gauge families (a prometheus-client collector)."""

    def __init__(self, snapshot: DatabaseSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from self._pool()
        yield self._deposits()
        yield from self._watchers()
        yield self._deliveries()
        yield self._alerts()
        yield self._orders()

    def _pool(self) -> Iterator[Metric]:
        addresses = GaugeMetricFamily(
            "addrpool_pool_addresses",
            "Pool addresses by protocol and state (available excludes cooling down)",
            labels=["protocol", "status"],
        )
        threshold = GaugeMetricFamily(
            "addrpool_pool_threshold",
            "Free addresses below which the pool counts as low",
            labels=["protocol"],
        )
        for summary in self._snapshot.pool:
            for state in ADDRESS_STATES:
                addresses.add_metric([summary.protocol, state], getattr(summary, state))
            threshold.add_metric([summary.protocol], summary.threshold)
        yield addresses
        yield threshold

    def _deposits(self) -> Metric:
        family = GaugeMetricFamily(
            "addrpool_deposits", "Deposits by chain and status", labels=["chain", "status"]
        )
        counts = self._snapshot.deposits
        # Every known status for every chain seen, so a status with no deposit reads 0.
        chains = {chain for chain, _ in counts} | {c.chain_id for c in self._snapshot.cursors}
        statuses = set(DEPOSIT_STATUSES) | {status for _, status in counts}
        for chain in sorted(chains):
            for status in sorted(statuses):
                family.add_metric([chain, status], counts.get((chain, status), 0))
        return family

    def _watchers(self) -> Iterator[Metric]:
        head = GaugeMetricFamily(
            "addrpool_watcher_head_block", "Chain head the watcher last saw", labels=["chain"]
        )
        cursor = GaugeMetricFamily(
            "addrpool_watcher_cursor_block", "Highest block fully processed", labels=["chain"]
        )
        lag = GaugeMetricFamily(
            "addrpool_watcher_lag_blocks", "Head minus cursor", labels=["chain"]
        )
        updated = GaugeMetricFamily(
            "addrpool_watcher_cursor_updated_timestamp_seconds",
            "When the cursor last moved (Unix time): a stalled watcher stops moving it",
            labels=["chain"],
        )
        for row in self._snapshot.cursors:
            seen = row.head if row.head is not None else row.block_number
            head.add_metric([row.chain_id], seen)
            cursor.add_metric([row.chain_id], row.block_number)
            lag.add_metric([row.chain_id], max(0, seen - row.block_number))
            updated.add_metric([row.chain_id], row.updated_at.timestamp())
        yield from (head, cursor, lag, updated)

    def _deliveries(self) -> Metric:
        return _by_status(
            "addrpool_webhook_deliveries",
            "Webhook deliveries by outcome (pending, succeeded, failed, cancelled)",
            known=DELIVERY_STATUSES,
            counts=self._snapshot.deliveries,
        )

    def _alerts(self) -> Metric:
        family = GaugeMetricFamily(
            "addrpool_alerts_firing", "Alerts currently firing, by kind", labels=["kind"]
        )
        for kind, count in sorted(self._snapshot.alerts_firing.items()):
            family.add_metric([kind], count)
        return family

    def _orders(self) -> Metric:
        return _by_status(
            "addrpool_orders",
            "Payment orders by status (pending, completed, expired, cancelled)",
            known=ORDER_STATUSES,
            counts=self._snapshot.orders,
        )


def _by_status(
    name: str, documentation: str, *, known: Iterable[str], counts: Mapping[str, int]
) -> Metric:
    """A gauge labelled by status: every known status (0 when none), and any other counted."""
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in sorted(set(known) | set(counts)):
        family.add_metric([status], counts.get(status, 0))
    return family
