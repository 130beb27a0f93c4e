"""Prometheus metrics: counters each process keeps, and gauges read from the database per scrape.

Counters (binds, unbinds, RPC calls) live in the process that does the work. With several
processes (`addrpool api --workers N`, or `addrpool worker` beside the API) prometheus-client's
multiprocess mode keeps them in files under `PROMETHEUS_MULTIPROC_DIR`, and a scrape sums them.
That variable must be set before `prometheus_client` is first imported: the library picks its
value store at import time.

The pool, deposit, watcher, delivery and alert gauges are not kept in memory at all: every
process would hold a different, stale copy. A scrape reads them from the database
(`pool/monitoring/gauges.py`) and `exposition` writes them after the counters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from pool.vocabulary import Protocol

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
CHECKOUTS = Counter(
    "addrpool_checkouts",
    "Payment-link checkouts posted by payers: created (an order), or why not: form_expired, "
    "client_limited, link_busy (its cap of pending orders), closed (draft, archived, expired, "
    "sold out, unknown), invalid (the form again), pool_empty",
    ["outcome"],
)
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


# Each labelled child, once: `labels()` checks and joins its values on every call, a cost
# every bind would pay (docs/performance.md, Bind).
_BIND_COUNTERS: dict[tuple[str, str], Counter] = {}


def count_bind(protocol: Protocol, outcome: str) -> None:
    counter = _BIND_COUNTERS.get((protocol, outcome))
    if counter is None:
        counter = _BIND_COUNTERS[(protocol, outcome)] = BINDS.labels(protocol, outcome)
    counter.inc()


def count_checkout(outcome: str) -> None:
    CHECKOUTS.labels(outcome).inc()


def count_unbinds(protocols: Iterable[Protocol]) -> None:
    for protocol in protocols:
        UNBINDS.labels(protocol).inc()


def observe_rpc_request(endpoint: str, method: str, seconds: float) -> None:
    RPC_REQUESTS.labels(endpoint, method).inc()
    RPC_LATENCY.labels(endpoint).observe(seconds)


def count_rpc_error(endpoint: str, kind: str) -> None:
    RPC_ERRORS.labels(endpoint, kind).inc()


def exposition(gauges: Collector) -> bytes:
    """The scrape body: this process's (or all processes') counters, then `gauges`."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if directory:
        # Sums every process's files (counters, histograms); the library ships no annotations here.
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    registry.register(gauges)
    return generate_latest(registry)
