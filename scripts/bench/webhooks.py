"""Webhook benchmark: delivery throughput to local receivers, and deposit → webhook latency.

    .venv/bin/python scripts/bench/webhooks.py [--events 4000] [--backends sqlite,postgresql]
        [--samples 12] [--parts throughput,latency] [--profile DIR] [--status-counts on|off]

All on this machine, all on loopback; every measurement gets a fresh database (SQLite file, or
PostgreSQL `bench_webhooks_<pid>_<label>`, dropped at the end), migrated with `pool.kit.migrate`.
Receivers: `scripts/bench/webhooks_receiver.py`, one process of its own (uvloop + httptools),
one port per receiver: `ok` answers 200 at once, `hang` answers after 30 s, `record` keeps
what it got. The tables are written by `scripts/bench/webhooks_report.py`.

1. Throughput (`scripts/bench/webhooks_throughput.py`, a child process per scenario, so the
   worker's event loop has nothing else to do): `--events` `deposit.pending` events written
   and committed, each delivered to every endpoint; then the real `DeliveryWorker.run()`
   (request timeout 10 s, 4 requests at a time per endpoint) starts and the clock runs until
   the database says every delivery of every healthy endpoint succeeded. Scenarios: 1
   endpoint; 4 endpoints; 4 endpoints of which one hangs (the 3 healthy ones timed, then the
   worker runs on to `--hang-soak` s, past its 60 s lease, and is stopped).
   Baseline (`scripts/bench/webhooks_baseline.py`), before and after the scenarios: bare
   aiohttp and httpx loops to the same `ok` receivers (4 requests in flight per receiver, no
   database): the ceiling the worker is measured against, under the same machine load.
   `--status-counts off` runs it with the delivery table's kept-count triggers disabled
   (PostgreSQL), to weigh what keeping the counts costs a real delivery.
2. Latency (`scripts/bench/webhooks_latency.py`; what "mined" means is explained there): anvil
   mining every 2 s, `addrpool worker` (watchers + delivery worker) watching it, a recording
   receiver subscribed to deposit.pending and deposit.confirmed; `--samples` transfers to
   bound addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pool.kit.db import Database
from pool.kit.migrate import upgrade
from scripts.bench.children import clean_env, run_measured
from scripts.bench.imports import PSQL
from scripts.bench.report import finish
from scripts.bench.webhooks_latency import BLOCK_TIME, LatencyRun, deploy_usdt
from scripts.bench.webhooks_latency import measure as measure_latency
from scripts.bench.webhooks_report import report
from scripts.bench.webhooks_throughput import ThroughputSpec
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil

ROOT = Path(__file__).resolve().parents[2]
PY_SPY = str(ROOT / ".venv" / "bin" / "py-spy")
SECRET_KEY = "bench-webhooks-not-a-real-secret"  # noqa: S105 - a throwaway devnet key
HANG_SECONDS = 30.0
RECEIVER_MODES = ["ok", "ok", "ok", "ok", "hang", "record"]
READY_DEADLINE = 30.0


@dataclass(frozen=True, slots=True)
class Scenario:
    label: str
    title: str
    ports: tuple[int, ...]  # indexes into RECEIVER_MODES


SCENARIOS = (
    Scenario("one", "1 endpoint", (0,)),
    Scenario("four", "4 endpoints", (0, 1, 2, 3)),
    Scenario("hang", "4 endpoints, 1 hangs", (0, 1, 2, 4)),
)


# -- databases ---------------------------------------------------------------------------------


class Databases:
    """Fresh, migrated databases; the PostgreSQL ones are dropped on exit."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.prefix = f"bench_webhooks_{os.getpid()}"
        self.created: list[str] = []

    def fresh(self, backend: str, label: str) -> str:
        if backend == "sqlite":
            path = self.work / f"{label}.db"
            if path.exists():
                raise RuntimeError(f"{path} exists: every measurement needs a fresh database")
            url = f"sqlite:///{path}"
        else:
            name = f"{self.prefix}_{label.replace('-', '_')}"
            self._psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self._psql(f"CREATE DATABASE {name}")
            self.created.append(name)
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        asyncio.run(_migrate(url))
        return url

    def drop_all(self) -> None:
        for name in self.created:
            self._psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)

    @staticmethod
    def _psql(sql: str, *, check: bool = True) -> None:
        subprocess.run([*PSQL, "-d", "postgres", "-c", sql], check=check, capture_output=True)


async def _migrate(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


# -- receivers ---------------------------------------------------------------------------------


class Receivers:
    def __init__(self, ports: list[int], pid: int) -> None:
        self.ports = ports
        self.pid = pid

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}/webhook"

    def stats_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}/_stats"

    def stats(self, *, reset: bool = False) -> list[dict[str, Any]]:
        path = "/_reset" if reset else "/_stats"
        reply = httpx.get(f"http://127.0.0.1:{self.ports[0]}{path}", trust_env=False, timeout=10)
        ports: list[dict[str, Any]] = reply.json()["ports"]
        return ports

    def cpu_seconds(self) -> float:
        """utime + stime of the receiver process, from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def receivers_running(work: Path) -> Iterator[Receivers]:
    ready = work / "receivers.json"
    argv = [sys.executable, "-m", "scripts.bench.webhooks_receiver"]
    argv += ["--modes", ",".join(RECEIVER_MODES), "--hang-seconds", str(HANG_SECONDS)]
    with (work / "receivers.log").open("wb") as log:
        process = subprocess.Popen(
            [*argv, "--ready", str(ready)], cwd=work, env=clean_env(), stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + READY_DEADLINE
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"receivers did not start; see {work / 'receivers.log'}")
                time.sleep(0.05)
            yield Receivers(json.loads(ready.read_text()), process.pid)
        finally:
            process.terminate()
            process.wait(30)


# -- 1. throughput -----------------------------------------------------------------------------


def run_throughput(
    backend: str,
    scenario: Scenario,
    databases: Databases,
    receivers: Receivers,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    label = f"{backend}-{scenario.label}"
    spec = ThroughputSpec(
        label=label,
        database_url=databases.fresh(backend, label),
        secret_key=SECRET_KEY,
        urls=[receivers.url(i) for i in scenario.ports],
        ports=[receivers.ports[i] for i in scenario.ports],
        stats_port=receivers.ports[0],
        healthy=[RECEIVER_MODES[i] == "ok" for i in scenario.ports],
        events=args.events,
        write_batch=500,
        hang_soak=args.hang_soak,
        stop_wait=args.stop_wait,
        log_level=args.log_level,
        result_path=str(work / f"{label}-result.json"),
        status_counts=args.status_counts == "on",
    )
    spec_path = work / f"{label}-spec.json"
    spec.save(spec_path)
    argv = [sys.executable, "-m", "scripts.bench.webhooks_throughput", str(spec_path)]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        out = args.profile / f"{label}.txt"
        argv = [PY_SPY, "record", "--format", "raw", "-r", "200", "-o", str(out), "--", *argv]
    receivers.stats(reset=True)
    receiver_cpu = receivers.cpu_seconds()
    load = os.getloadavg()[0]
    log_path = work / f"{label}.log"
    result = run_measured(
        argv,
        work=work,
        log_path=log_path,
        result_path=Path(spec.result_path),
        what=f"throughput child {label}",
    )
    result["receiver_cpu_seconds"] = receivers.cpu_seconds() - receiver_cpu
    stats = receivers.stats()
    result["receivers"] = [stats[i] | {"records": None} for i in scenario.ports]
    result["log_lines"] = log_path.read_bytes().count(b"\n")
    return result | {"title": scenario.title, "load": load}


def run_baselines(
    receivers: Receivers, args: argparse.Namespace, work: Path, *, when: str
) -> list[dict[str, Any]]:
    """Bare client loops to the `ok` receivers, 1 and 4 of them (a child process each, as the
    worker gets): the ceiling for the throughput scenarios, in the same run."""
    found: list[dict[str, Any]] = []
    for count in (1, 4):
        print(f"baseline ({when}): bare clients, {count} receiver(s)", flush=True)
        urls = [receivers.url(i) for i, mode in enumerate(RECEIVER_MODES) if mode == "ok"][:count]
        argv = [sys.executable, "-m", "scripts.bench.webhooks_baseline", *urls]
        argv += ["--requests", str(args.events * count), "--per-url", "4"]
        done = subprocess.run(argv, cwd=ROOT, env=clean_env(), capture_output=True, check=True)
        found.append(json.loads(done.stdout) | {"when": when})
    return found


# -- 2. latency --------------------------------------------------------------------------------


def run_latency(
    backends: Sequence[str],
    databases: Databases,
    receivers: Receivers,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    record = RECEIVER_MODES.index("record")
    with Anvil(block_time=BLOCK_TIME) as node:
        token, sender = deploy_usdt(node.url)
        for backend in backends:
            print(f"{backend}: latency, {args.samples} samples", flush=True)
            receivers.stats(reset=True)
            run = LatencyRun(
                backend=backend,
                database_url=databases.fresh(backend, f"{backend}-latency"),
                secret_key=SECRET_KEY,
                receiver_url=receivers.url(record),
                stats_url=receivers.stats_url(record),
                confirmations=args.confirmations,
                samples=args.samples,
                seed=args.seed,
                work=work,
                env=clean_env(),
            )
            results[backend] = measure_latency(run, node.url, token, sender)
        results["anvil_head"] = anvil.block_number(node.url)
    return results


# -- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "load": load_average(),
        "hang_seconds": HANG_SECONDS,
    }
    databases = Databases(work)
    try:
        with receivers_running(work) as receivers:
            if "throughput" in args.parts:
                results["baseline"] = run_baselines(receivers, args, work, when="before")
                results["throughput"] = {
                    backend: throughput_scenarios(backend, databases, receivers, args, work)
                    for backend in args.backends
                }
                results["baseline"] += run_baselines(receivers, args, work, when="after")
            if "latency" in args.parts:
                results["latency"] = latency_with_goal(
                    run_latency(args.backends, databases, receivers, args, work)
                )
    finally:
        databases.drop_all()
    results["load_end"] = load_average()
    return results


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def throughput_scenarios(
    backend: str, databases: Databases, receivers: Receivers, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    by_label: dict[str, Any] = {}
    for scenario in SCENARIOS:
        if scenario.label in args.scenarios:
            print(f"{backend}: throughput, {scenario.title}", flush=True)
            by_label[scenario.label] = run_throughput(
                backend, scenario, databases, receivers, args, work
            )
    return by_label


def latency_with_goal(latency: dict[str, Any]) -> dict[str, Any]:
    first = next(v for v in latency.values() if isinstance(v, dict))
    interval = first["chain"]["poll_interval"]
    return latency | {"poll_interval": interval, "goal_seconds": interval + 1.0}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    words = lambda text: text.split(",")  # noqa: E731
    parser.add_argument("--events", type=int, default=4_000)
    parser.add_argument("--backends", type=words, default=["sqlite", "postgresql"])
    parser.add_argument("--parts", type=words, default=["throughput", "latency"])
    parser.add_argument(
        "--scenarios", type=words, default=[s.label for s in SCENARIOS], help="one,four,hang"
    )
    parser.add_argument(
        "--hang-soak", type=float, default=75.0,
        help="keep the worker running this long (s from its start) with the hanging endpoint",
    )  # fmt: skip
    parser.add_argument(
        "--stop-wait", type=float, default=20.0,
        help="how long a stopped worker may take to return before it is cancelled",
    )  # fmt: skip
    parser.add_argument("--log-level", default="INFO", help="the worker's, as in production")
    parser.add_argument(
        "--status-counts", choices=("on", "off"), default="on",
        help="off: throughput without the delivery table's kept-count triggers (PostgreSQL)",
    )  # fmt: skip
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--confirmations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profile", type=Path, help="run the throughput children under py-spy; stacks go here"
    )
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="addrpool-bench-webhooks-") as tmp:
        results = run(args, Path(tmp))
    return finish(results, args.json, shown=report(results, args))


if __name__ == "__main__":
    sys.exit(main())
