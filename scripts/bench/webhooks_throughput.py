"""Delivery throughput, measured in a process of its own for `scripts/bench/webhooks.py`.

    python -m scripts.bench.webhooks_throughput SPEC.json

On a freshly migrated database: one endpoint per receiver URL, each subscribed to
`deposit.pending`; `events` events written with `outbox.record_event` (their deliveries
with them, one per endpoint) and committed; then the real `DeliveryWorker.run(stop)` is started
and the clock runs until every delivery of every healthy endpoint is recorded `succeeded`: the
receivers are asked every 50 ms how many distinct deliveries they got, and once they have them
all, the database every 20 ms until none of them is pending. Logging is configured
as `addrpool worker` does (JSON lines at `log_level`, here to a file), so the worker pays for
its per-attempt log line as in production.

With a hanging endpoint the worker then keeps running until `hang_soak` seconds from its start
(past the 60 s lease, to see what the lease does to deliveries still queued), and then is told
to stop: how long `run()` takes to return is part of the result (it is cancelled after
`stop_wait` seconds).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.logs import configure_logging
from pool.kit.secret_box import secret_box
from pool.kit.tables import delivery, delivery_attempt
from pool.vocabulary import DEPOSIT_PENDING
from pool.webhooks import endpoints as webhooks
from pool.webhooks.claims_repository import Claimed
from pool.webhooks.delivery import DeliveryWorker
from pool.webhooks.outbox import record_event

EVENT_TYPE = DEPOSIT_PENDING
PROGRESS_POLL = 0.05
RECORDED_POLL = 0.02
DEADLINE = 900.0


@dataclass(frozen=True, slots=True)
class ThroughputSpec:
    label: str
    database_url: str
    secret_key: str
    urls: list[str]  # one endpoint each
    ports: list[int]  # the receiver port behind each URL
    stats_port: int  # any receiver port: each answers GET /_stats for all
    healthy: list[bool]  # the clock stops when every healthy endpoint is done
    events: int
    write_batch: int
    hang_soak: float
    stop_wait: float
    log_level: str
    result_path: str
    status_counts: bool = True  # False: the delivery table's kept-count triggers disabled

    @classmethod
    def load(cls, path: Path) -> ThroughputSpec:
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


class ObservedWorker(DeliveryWorker):
    """The real worker; it only counts what it hands to its send tasks.

    `overlapping`: a delivery handed out again while an earlier hand-out of it has not finished
    (queued or in flight): its lease ran out and it was claimed a second time.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.claims: Counter[str] = Counter()
        self.in_hand: Counter[str] = Counter()
        self.overlapping = 0

    async def _deliver_limited(self, claimed: Claimed) -> None:
        key = claimed.delivery_id
        self.claims[key] += 1
        self.overlapping += 1 if self.in_hand[key] else 0
        self.in_hand[key] += 1
        try:
            await super()._deliver_limited(claimed)
        finally:
            self.in_hand[key] -= 1

    @property
    def tasks(self) -> int:
        return len(self._tasks)


@dataclass(slots=True)
class Progress:
    """What the clock saw: when each endpoint was done, and the worker's backlog over time."""

    done_at: dict[str, float] = field(default_factory=dict)
    peak_tasks: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s, tasks, received)


def deposit_like(n: int) -> dict[str, Any]:
    """A payload the size and shape of a real `deposit.pending` (about 700 bytes signed)."""
    now = isoformat_z(utc_now())
    return {
        "depositId": f"dep_bench_{n:08d}",
        "depositReference": f"user_{n % 997}",
        "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "protocol": "evm",
        "chainId": "ethereum-mainnet",
        "currency": "USDT",
        "amount": "125.5",
        "txHash": "0x" + f"{n:064x}",
        "logIndex": n % 7,
        "blockNumber": 21_000_000 + n // 10,
        "from": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "confirmations": 1,
        "requiredConfirmations": 12,
        "status": "pending",
        "late": False,
        "detectedAt": now,
        "confirmedAt": None,
        "completedAt": None,
    }


async def create_endpoints(db: Database, settings: Settings, urls: list[str]) -> list[str]:
    box = secret_box(settings)
    ids: list[str] = []
    async with db.write() as conn:
        for n, url in enumerate(urls):
            endpoint, _secret = await webhooks.create_endpoint(
                conn,
                box,
                url=url,
                events=[EVENT_TYPE],
                scheme="body",
                description=f"bench receiver {n}",
                now=utc_now(),
            )
            ids.append(endpoint.id)
    return ids


async def write_events(db: Database, *, events: int, batch: int) -> float:
    started = time.perf_counter()
    for first in range(0, events, batch):
        async with db.write() as conn:
            for n in range(first, min(events, first + batch)):
                await record_event(conn, type=EVENT_TYPE, data=deposit_like(n), now=utc_now())
    return time.perf_counter() - started


async def disable_status_counts(db: Database) -> None:
    """What a delivery costs without its kept counts: the delivery table's triggers (those of
    migration 0027, its only user triggers; PostgreSQL) off for the run."""
    if db.is_sqlite:
        raise SystemExit("--status-counts off is for PostgreSQL")
    async with db.write() as conn:
        await conn.execute(text("ALTER TABLE delivery DISABLE TRIGGER USER"))


async def analyze(db: Database) -> None:
    """PostgreSQL: table statistics, as autovacuum keeps them in a running database. Without
    them, thousands of rows inserted a second ago look like a handful, and the claim's plan
    sorts the whole backlog each time (a bitmap scan) instead of walking its index in order."""
    if not db.is_sqlite:
        async with db.autocommit() as conn:
            await conn.execute(text("ANALYZE"))


async def pending_by_endpoint(db: Database) -> dict[str, int]:
    statement = (
        select(delivery.c.endpoint_id, func.count())
        .where(delivery.c.status == "pending")
        .group_by(delivery.c.endpoint_id)
    )
    async with db.read() as conn:
        return {endpoint: int(count) for endpoint, count in (await conn.execute(statement)).all()}


async def received(stats_port: int) -> dict[int, int]:
    """Distinct deliveries each receiver port got so far: a bare GET, cheap for this process."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stats_port)
    try:
        writer.write(b"GET /_stats HTTP/1.1\r\nHost: receiver\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)
        if length is None:
            raise RuntimeError(f"receiver answered without a length: {head!r}")
        body = json.loads(await reader.readexactly(int(length.group(1))))
    finally:
        writer.close()
    return {int(port["port"]): int(port["unique"]) for port in body["ports"]}


async def watch_progress(
    db: Database,
    worker: ObservedWorker,
    progress: Progress,
    *,
    until: dict[str, int],
    spec: ThroughputSpec,
    started: float,
) -> float:
    """Seconds until every endpoint in `until` (id → receiver port) got every event and the
    database has them all succeeded. The receivers are asked every 50 ms (cheap); the
    database only at the end, so the measurement hardly loads what it measures."""
    while until.keys() - progress.done_at.keys():
        await asyncio.sleep(PROGRESS_POLL)
        got = await received(spec.stats_port)
        elapsed = time.perf_counter() - started
        for endpoint, port in until.items():
            if got[port] >= spec.events:
                progress.done_at.setdefault(endpoint, elapsed)
        progress.peak_tasks = max(progress.peak_tasks, worker.tasks)
        progress.samples.append((round(elapsed, 2), worker.tasks, sum(got.values())))
        if elapsed > DEADLINE:
            raise RuntimeError(f"not delivered within {DEADLINE}s: {got}")
    while True:
        pending = await pending_by_endpoint(db)
        if not any(pending.get(endpoint) for endpoint in until):
            return time.perf_counter() - started
        await asyncio.sleep(RECORDED_POLL)


async def outcome_by_endpoint(db: Database) -> dict[str, dict[str, int]]:
    """Per endpoint: deliveries per status, and attempts recorded."""
    found: dict[str, dict[str, int]] = {}
    by_status = select(delivery.c.endpoint_id, delivery.c.status, func.count()).group_by(
        delivery.c.endpoint_id, delivery.c.status
    )
    attempts = (
        select(delivery.c.endpoint_id, func.count())
        .select_from(delivery_attempt.join(delivery))
        .group_by(delivery.c.endpoint_id)
    )
    async with db.read() as conn:
        for endpoint, status, count in (await conn.execute(by_status)).all():
            found.setdefault(endpoint, {})[status] = int(count)
        for endpoint, count in (await conn.execute(attempts)).all():
            found.setdefault(endpoint, {})["attempts"] = int(count)
    return found


async def stop_worker(
    worker: ObservedWorker, stop: asyncio.Event, run: asyncio.Task[None], wait: float
) -> float | None:
    """Seconds `run()` took to return once stopped; None if it had to be cancelled."""
    stop.set()
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.shield(run), timeout=wait)
    except TimeoutError:
        for task in [run, *worker._tasks]:
            task.cancel()
        await asyncio.gather(run, *worker._tasks, return_exceptions=True)
        return None
    return time.perf_counter() - started


async def measure(spec: ThroughputSpec) -> dict[str, Any]:
    settings = Settings(
        database_url=spec.database_url, secret_key=spec.secret_key, webhook_allow_private=True
    )
    db = Database(spec.database_url, pool_size=10)
    try:
        endpoints = await create_endpoints(db, settings, spec.urls)
        if not spec.status_counts:
            await disable_status_counts(db)
        write_seconds = await write_events(db, events=spec.events, batch=spec.write_batch)
        await analyze(db)
        configure_logging(spec.log_level)  # only now: the set-up is not what we measure
        worker = ObservedWorker(db, settings)
        stop = asyncio.Event()
        healthy = {
            endpoint: port
            for endpoint, port, ok in zip(endpoints, spec.ports, spec.healthy, strict=True)
            if ok
        }
        progress = Progress()
        started, cpu_started = time.perf_counter(), time.process_time()
        run = asyncio.create_task(worker.run(stop))
        seconds = await watch_progress(
            db, worker, progress, until=healthy, spec=spec, started=started
        )
        cpu_seconds = time.process_time() - cpu_started
        if len(healthy) < len(endpoints):
            await asyncio.sleep(max(0.0, spec.hang_soak - (time.perf_counter() - started)))
        soaked = time.perf_counter() - started
        tasks_at_stop = worker.tasks
        outcome = await outcome_by_endpoint(db)
        stop_seconds = await stop_worker(worker, stop, run, spec.stop_wait)
    finally:
        await db.dispose()
    return {
        "label": spec.label,
        "endpoints": endpoints,
        "healthy": sorted(healthy),
        "ports": spec.ports,
        "events": spec.events,
        "write_seconds": write_seconds,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "done_at": progress.done_at,
        "peak_tasks": progress.peak_tasks,
        "samples": progress.samples,
        "soaked_seconds": soaked,
        "tasks_at_stop": tasks_at_stop,
        "claims": {
            "deliveries": len(worker.claims),
            "handed_out": sum(worker.claims.values()),
            "claimed_again": sum(1 for count in worker.claims.values() if count > 1),
            "overlapping": worker.overlapping,
            "max_per_delivery": max(worker.claims.values(), default=0),
        },
        "outcome": outcome,
        "stop_seconds": stop_seconds,
        "stop_wait": spec.stop_wait,
    }


def main(argv: list[str]) -> int:
    spec = ThroughputSpec.load(Path(argv[0]))
    result = asyncio.run(measure(spec))
    Path(spec.result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
