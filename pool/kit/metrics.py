"""Prometheus metrics: counters each process keeps, and gauges read from the database per scrape.

Counters (binds, unbinds, RPC calls) live in the process that does the work. With several
processes (`addrpool api --workers N`, or `addrpool worker` beside the API) prometheus-client's
multiprocess mode keeps them in files under `PROMETHEUS_MULTIPROC_DIR`, and a scrape sums them.
That variable must be set before `prometheus_client` is first imported: the library picks its
value store at import time.

The pool, deposit, watcher, delivery and alert gauges are not kept in memory at all: every
process would hold a different, stale copy. A scrape reads them from the database with a
handful of GROUP BY queries (`read_snapshot`) and exposes them through `SnapshotCollector`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.stats import PoolSummary, summarize
from pool.alerts.repository import count_firing_by_kind
from pool.chain_state.repository import Cursor, load_cursors
from pool.deposits.repository import count_deposits_by_chain_and_status
from pool.kit.config import AlertSettings
from pool.vocabulary import ADDRESS_STATES, DELIVERY_STATUSES, DEPOSIT_STATUSES, Protocol
from pool.webhooks.deliveries_repository import count_deliveries_by_status

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# What `generate_latest` writes; stated here because newer clients advertise 1.0.0 by default,
# which older Prometheus servers do not know.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


BINDS = Counter(
    "addrpool_binds",
    "Bind requests answered by the API: created, existing (reference already bound), "
    "insufficient (no free address)",
    ["protocol", "outcome"],
)
UNBINDS = Counter("addrpool_unbinds", "Addresses unbound through the API", ["protocol"])
# The endpoint label is always a redacted URL (scheme, host, port): RPC URLs carry API keys.
RPC_REQUESTS = Counter(
    "addrpool_rpc_requests",
    "JSON-RPC HTTP requests sent, retries included ('batch' for a batch)",
    ["endpoint", "method"],
)
RPC_ERRORS = Counter(
    "addrpool_rpc_errors",
    "JSON-RPC requests that failed, by kind: timeout, connection, http, invalid_json, "
    "bad_answer, rpc_error (the node answered with a JSON-RPC error object)",
    ["endpoint", "kind"],
)
RPC_LATENCY = Histogram(
    "addrpool_rpc_request_duration_seconds",
    "Time from sending a JSON-RPC HTTP request to its answer or failure",
    ["endpoint"],
)


def count_bind(protocol: Protocol, outcome: str) -> None:
    BINDS.labels(protocol, outcome).inc()


def count_unbinds(protocols: Iterable[Protocol]) -> None:
    for protocol in protocols:
        UNBINDS.labels(protocol).inc()


def observe_rpc_request(endpoint: str, method: str, seconds: float) -> None:
    RPC_REQUESTS.labels(endpoint, method).inc()
    RPC_LATENCY.labels(endpoint).observe(seconds)


def count_rpc_error(endpoint: str, kind: str) -> None:
    RPC_ERRORS.labels(endpoint, kind).inc()


@dataclass(frozen=True, slots=True)
class DatabaseSnapshot:
    """What one scrape read from the database."""

    pool: Sequence[PoolSummary]
    deposits: dict[tuple[str, str], int]  # (chain id, status) → count
    cursors: Sequence[Cursor]
    deliveries: dict[str, int]  # status → count
    alerts_firing: dict[str, int]  # kind → firing count (0 for kinds that fired before)


async def read_snapshot(
    conn: AsyncConnection, *, now: datetime, alerts: AlertSettings | None = None
) -> DatabaseSnapshot:
    """Five aggregate queries; none returns more rows than there are labels."""
    return DatabaseSnapshot(
        pool=await summarize(conn, now=now, alerts=alerts),
        deposits=await count_deposits_by_chain_and_status(conn),
        cursors=await load_cursors(conn),
        deliveries=await count_deliveries_by_status(conn),
        alerts_firing=await count_firing_by_kind(conn),
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
        family = GaugeMetricFamily(
            "addrpool_webhook_deliveries",
            "Webhook deliveries by outcome (pending, succeeded, failed, cancelled)",
            labels=["status"],
        )
        counts = self._snapshot.deliveries
        for status in sorted(set(DELIVERY_STATUSES) | set(counts)):
            family.add_metric([status], counts.get(status, 0))
        return family

    def _alerts(self) -> Metric:
        family = GaugeMetricFamily(
            "addrpool_alerts_firing", "Alerts currently firing, by kind", labels=["kind"]
        )
        for kind, count in sorted(self._snapshot.alerts_firing.items()):
            family.add_metric([kind], count)
        return family


def exposition(snapshot: DatabaseSnapshot) -> bytes:
    """The scrape body: this process's (or all processes') counters, then the snapshot."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if directory:
        # Sums every process's files (counters, histograms); the library ships no annotations here.
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)
