"""Bind → pool-low alert at an HTTP hook, for `scripts/bench/alerts.py`.

One backend at a time: the real processes (`addrpool serve` on SQLite; `addrpool api
--workers 2` beside `addrpool worker` on PostgreSQL) with one HTTP hook pointing at a
recording receiver (`scripts/bench/webhooks_receiver.py`, mode `record`), EVM threshold 200
(so `pool_low:evm` fires below 200 free and resolves above 220).

A sample, starting with 230 free addresses and the alert resolved:
1. 30 binds back to back → 200 free, nothing fires yet;
2. a random pause (0.1–0.6 s: a random phase against the notifier's 0.25 s poll), then the
   bind that crosses (→ 199 free); the clock starts when its response has arrived;
3. the receiver's arrival time of the `fired` POST ends it (wall clock, same machine);
4. 31 addresses imported through the API (→ 230 free); the `resolved` POST is timed the
   same way, from the import's response.
The first sample warms the processes up and is not reported. Afterwards the breakdown is read
from the database: the transition's `at` (the evaluation's clock) splits each figure into
"evaluated" (after the bind) and "delivered" (notifier pickup + POST).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from pool.kit.db import Database
from pool.kit.tables import alert, alert_transition
from scripts.bench.bind import addrpool

THRESHOLD = 200
START_FREE = 230  # above 220, floor(200 × 1.1) with the default 10 % margin: resolved
SUBJECT = "pool_low:evm"
DEADLINE = 30.0  # seconds to wait for a POST before the sample fails
RECEIVER_POLL = 0.02
_addresses = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Setup:
    backend: str  # sqlite | postgresql
    database_url: str
    env: dict[str, str]
    work: Path
    samples: int
    seed: int = 8


@dataclass(slots=True)
class Sample:
    crossing_sent_at: float
    crossing_answered_at: float
    fired_at: float
    import_answered_at: float
    resolved_at: float
    fired_transition_at: float = 0.0
    resolved_transition_at: float = 0.0

    @property
    def fired_seconds(self) -> float:
        return self.fired_at - self.crossing_answered_at

    @property
    def resolved_seconds(self) -> float:
        return self.resolved_at - self.import_answered_at


@dataclass(slots=True)
class Receiver:
    url: str
    stats_url: str
    seen: int = 0
    others: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def next_record(self, client: httpx.Client, alive: ProcessCheck) -> dict[str, Any]:
        """The next pool-low POST the hook receiver got, in arrival order; the others (the
        worker's timer also fires `pool_exhaustion:evm` as the bench binds) are counted."""
        give_up = time.monotonic() + DEADLINE
        while True:
            while len(self.records) <= self.seen:
                if time.monotonic() > give_up:
                    raise RuntimeError(f"no alert POST within {DEADLINE:.0f} s")
                alive.check()
                self.records = client.get(self.stats_url).json()["ports"][0]["records"]
                time.sleep(RECEIVER_POLL)
            self.seen += 1
            record = self.records[self.seen - 1]
            if record["body"]["alert"]["subject"] == SUBJECT:
                return record
            self.others.append(record["body"]["text"])


@dataclass(slots=True)
class ProcessCheck:
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]

    def check(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.logs[name]}")


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    """As `tests/fixtures/server.py` does (`tests` is not importable from a script)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def hook_receiver(work: Path) -> Iterator[Receiver]:
    ready = work / "alerts-receiver.json"
    argv = [sys.executable, "-m", "scripts.bench.webhooks_receiver", "--modes", "record"]
    with (work / "alerts-receiver.log").open("wb") as log:
        process = subprocess.Popen([*argv, "--ready", str(ready)], stdout=log, stderr=log)
        try:
            wait_for(ready.exists, process, "the hook receiver")
            port = json.loads(ready.read_text())[0]
            yield Receiver(f"http://127.0.0.1:{port}/hook", f"http://127.0.0.1:{port}/_stats")
        finally:
            process.terminate()
            process.wait(30)


def wait_for(ready: Any, process: subprocess.Popen[bytes], what: str, wait: float = 180) -> None:
    deadline = time.monotonic() + wait
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)


def server_commands(backend: str, port: int) -> dict[str, list[str]]:
    """The deployment each backend is meant for: one process, or API workers + a worker."""
    if backend == "sqlite":
        return {"serve": ["serve", "--port", str(port)]}
    return {
        "api": ["api", "--port", str(port), "--workers", "2"],
        "worker": ["worker"],
    }


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/health", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def addrpool_running(setup: Setup, hook_url: str, port: int) -> Iterator[ProcessCheck]:
    hooks = [{"name": "bench", "type": "http", "url": hook_url}]
    env = {
        **setup.env,
        "ADDRPOOL_ALERTS__HOOKS": json.dumps(hooks),
        "ADDRPOOL_ALERTS__HOOKS_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        "ADDRPOOL_ALERTS__THRESHOLDS": json.dumps({"evm": THRESHOLD}),
    }
    binary = str(Path(sys.executable).parent / "addrpool")
    with ExitStack() as stack:
        check = ProcessCheck({}, {})
        for name, argv in server_commands(setup.backend, port).items():
            log_path = setup.work / f"alerts-{setup.backend}-{name}.log"
            log = stack.enter_context(log_path.open("wb"))
            process = subprocess.Popen([binary, *argv], env=env, stdout=log, stderr=log)
            stack.callback(stop_process, process)
            check.processes[name], check.logs[name] = process, log_path
        first = next(iter(check.processes.values()))
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), first, "addrpool")
        yield check


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    process.wait(60)


# -- the API -----------------------------------------------------------------------------------


def bind(client: httpx.Client, reference: str) -> None:
    answer = client.post(
        "/api/v1/deposits/bind", json={"depositReference": reference, "protocol": "evm"}
    )
    if answer.status_code != 201:
        raise RuntimeError(f"bind answered {answer.status_code}: {answer.text[:300]}")


def import_addresses(client: httpx.Client, count: int) -> None:
    addresses = [f"0x{next(_addresses):040x}" for _ in range(count)]
    answer = client.post(
        "/api/v1/address-pool/addresses", json={"protocol": "evm", "addresses": addresses}
    )
    if answer.status_code != 201:
        raise RuntimeError(f"import answered {answer.status_code}: {answer.text[:300]}")


def expect(record: dict[str, Any], transition: str) -> float:
    body = record["body"]
    if body["transition"] != transition:
        raise RuntimeError(f"expected {transition} pool_low:evm, got {body['text']!r}")
    return float(record["at"])


def one_sample(
    client: httpx.Client, receiver: Receiver, alive: ProcessCheck, rng: random.Random, n: int
) -> Sample:
    for i in range(START_FREE - THRESHOLD):
        bind(client, f"alerts-{n}-{i}")
    time.sleep(rng.uniform(0.1, 0.6))  # evaluations of the approach are over; a random phase
    crossing_sent_at = time.time()
    bind(client, f"alerts-{n}-crossing")
    crossing_answered_at = time.time()
    fired_at = expect(receiver.next_record(client, alive), "fired")
    import_addresses(client, START_FREE - THRESHOLD + 1)
    import_answered_at = time.time()
    resolved_at = expect(receiver.next_record(client, alive), "resolved")
    return Sample(crossing_sent_at, crossing_answered_at, fired_at, import_answered_at, resolved_at)


async def add_transitions(database_url: str, samples: list[Sample]) -> None:
    """Each transition's `at` (taken when its evaluation began), matched in order."""
    db = Database(database_url, pool_size=1)
    query = (
        select(alert_transition.c.transition, alert_transition.c.at)
        .join(alert)
        .where(alert.c.subject == SUBJECT)
        .order_by(alert_transition.c.at, alert_transition.c.id)
    )
    try:
        async with db.read() as conn:
            rows = (await conn.execute(query)).all()
    finally:
        await db.dispose()
    fired = [at.timestamp() for kind, at in rows if kind == "fired"][-len(samples) :]
    resolved = [at.timestamp() for kind, at in rows if kind == "resolved"][-len(samples) :]
    for sample, fired_at, resolved_at in zip(samples, fired, resolved, strict=True):
        sample.fired_transition_at, sample.resolved_transition_at = fired_at, resolved_at


def measure(setup: Setup) -> dict[str, Any]:
    """`setup.samples` measured samples after one warm-up; raw seconds per sample."""
    scopes = "deposits:read,deposits:write,pool:write"
    created = addrpool(
        "keys", "create", "--name", "bench", "--scopes", scopes, "--json", env=setup.env
    )
    key = json.loads(created)
    port = free_port()
    rng = random.Random(setup.seed)  # noqa: S311 - phases, not secrets
    headers = {"Authorization": f"Bearer {key['key']}"}
    samples: list[Sample] = []
    with (
        hook_receiver(setup.work) as receiver,
        addrpool_running(setup, receiver.url, port) as alive,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30, trust_env=False
        ) as client,
    ):
        import_addresses(client, START_FREE)
        for n in range(setup.samples + 1):
            sample = one_sample(client, receiver, alive, rng, n)
            if n:
                samples.append(sample)
            print(f"  {setup.backend} sample {n}: {sample.fired_seconds:.3f} s", flush=True)
        time.sleep(1.0)  # a duplicate or a flap would arrive by now
        records = client.get(receiver.stats_url).json()["ports"][0]["records"]
        later = [r["body"] for r in records[receiver.seen :]]
        extra = [body["text"] for body in later if body["alert"]["subject"] == SUBJECT]
    asyncio.run(add_transitions(setup.database_url, samples))
    return {
        "samples": [asdict(s) | {"fired_seconds": s.fired_seconds} for s in samples],
        "later_posts": extra,  # none expected
        "other_alerts": receiver.others,
    }
