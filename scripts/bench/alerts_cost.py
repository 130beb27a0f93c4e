"""What alerting costs a bind, for `scripts/bench/alerts.py`.

Two servers on the same database and the same pool, up at the same time, differing only in
`ADDRPOOL_ALERTS__ENABLED`: with it on (EVM threshold 200) every created bind schedules the
pool-low evaluation (`PoolAlerts.changed`: coalesced 50 ms, then a capped count of free
addresses and a look-up of the firing alert, in the same process); off, `changed` returns at
once. wrk with `scripts/bench/bind.lua` (32 connections, 2 threads, a new reference per
request) alternates between them, ABBA, after a discarded warm-up run on each, so drift and
other work on the machine hit both alike; medians, their ratio, and the median of the ratios
within back-to-back pairs (the steadier figure when the load swings).

- PostgreSQL: `addrpool api --workers 2` twice; before each run the tables are vacuumed,
  analysed and checkpointed (`scripts/bench/bind.py`'s `settle`). The number of index/seq
  scans of the `alert` table during each run (`pg_stat_user_tables`) shows the evaluations
  really ran (enabled) or did not (disabled); see `wait_for_stats` for its precision.
- SQLite: `addrpool serve` twice, each on its own file with its own pool (one SQLite file
  takes one writer at a time: sharing it would measure the lock, not alerting).

`evaluation_cost` times one evaluation and one bind in the calling process (part 3 of the
benchmark): what alerting can take from a process, whatever else the machine is doing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts.engine import COALESCE_SECONDS, evaluate_pool
from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings
from pool.kit.db import Database
from scripts.bench.alerts_latency import free_port, healthy, stop_process, wait_for
from scripts.bench.bind import (
    LUA,
    VENV_BIN,
    addrpool,
    parse_wrk,
    psql,
    seed_pool_postgres,
    settle,
)

BIND_PATH = "/api/v1/deposits/bind"
MODES = ("enabled", "disabled")
STARTUP = 180.0  # seconds
WARM_UP_SECONDS = 3


@dataclass(frozen=True, slots=True)
class CostPlan:
    duration: int
    repeat: int
    addresses: int


def mode_env(env: dict[str, str], mode: str) -> dict[str, str]:
    return {
        **env,
        "ADDRPOOL_ALERTS__ENABLED": "true" if mode == "enabled" else "false",
        "ADDRPOOL_ALERTS__THRESHOLDS": json.dumps({"evm": 200}),
    }


def abba(repeat: int) -> list[str]:
    """enabled, disabled, disabled, enabled, …: neither mode always goes first."""
    order: list[str] = []
    for n in range(repeat):
        order += list(MODES) if n % 2 == 0 else list(reversed(MODES))
    return order


def load() -> str:
    """The 1, 5 and 15 minute load averages (2 cores here: above 2 means waiting)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def alert_scans(database: str) -> int:
    """Reads of the `alert` table so far: the post-bind evaluation reads it once each time."""
    row = psql(
        database,
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
        "FROM pg_stat_user_tables WHERE relname = 'alert'",
    )
    return int(row.strip() or 0)


def wait_for_stats() -> None:
    """PostgreSQL 15 publishes a backend's table counts when it goes idle, at most once a
    second, and a pooled connection left with pending counts may hold them up to 10 s: after
    this pause most of a run's reads are counted, a few may show in the next run. The figure
    says whether evaluations ran, not exactly how many."""
    time.sleep(1.5)


def wrk(url: str, key: str, prefix: str, duration: int) -> dict[str, float]:
    """`scripts/bench/bind.py`'s wrk call; wrk pads a percentile of whole seconds ("1.47s ")
    with a trailing space, which its parser does not expect, so the lines are stripped first."""
    argv = ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", str(LUA), url]
    argv += ["--", BIND_PATH, key, prefix]
    output = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return parse_wrk("\n".join(line.rstrip() for line in output.splitlines()))


@contextmanager
def servers(
    argv: list[str], envs: dict[str, dict[str, str]], work: Path
) -> Iterator[dict[str, str]]:
    """One server per mode, each logging to a file in `work` (bench_bind's `serving` discards
    the output and allows 60 s, too little for four workers starting on a loaded machine)."""
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for mode, env in envs.items():
            port = free_port()
            log = stack.enter_context((work / f"cost-{mode}.log").open("wb"))
            process = subprocess.Popen(
                [*argv, "--port", str(port)], env=env, stdout=log, stderr=log
            )
            stack.callback(stop_process, process)
            urls[mode] = f"http://127.0.0.1:{port}"
            wait_for(lambda url=urls[mode]: healthy(url), process, f"{mode} server", STARTUP)
        yield urls


def warm_up(urls: dict[str, str], keys: dict[str, str]) -> None:
    """A discarded run per server first: connection pools filled, statements prepared (the
    first measured run would otherwise always pay this, and always for the same mode)."""
    for mode, url in urls.items():
        wrk(url, keys[mode], f"warm{mode[0]}", WARM_UP_SECONDS)


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_mode: dict[str, Any] = {}
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        by_mode[mode] = {
            "rps_runs": [round(r["rps"]) for r in mine],
            "rps": statistics.median(r["rps"] for r in mine),
            "p50_ms": statistics.median(r["p50_ms"] for r in mine),
            "p99_ms": statistics.median(r["p99_ms"] for r in mine),
            "non_2xx": sum(r["non_2xx"] for r in mine),
        }
    by_mode["ratio"] = by_mode["enabled"]["rps"] / by_mode["disabled"]["rps"]
    by_mode["pair_ratios"] = pair_ratios(runs)
    by_mode["pair_ratio"] = statistics.median(by_mode["pair_ratios"])
    return by_mode


def pair_ratios(runs: list[dict[str, Any]]) -> list[float]:
    """enabled / disabled within each back-to-back pair of the ABBA order: the two runs of a
    pair are seconds apart, so a swing of the machine's load hits them nearly alike."""
    ratios = []
    for first, second in zip(runs[0::2], runs[1::2], strict=False):
        on, off = (first, second) if first["mode"] == "enabled" else (second, first)
        ratios.append(round(on["rps"] / off["rps"], 3))
    return ratios


def run_postgres(
    database: str, key: str, env: dict[str, str], plan: CostPlan, work: Path
) -> dict[str, Any]:
    argv = [str(VENV_BIN / "addrpool"), "api", "--workers", "2"]
    envs = {mode: mode_env(env, mode) for mode in MODES}
    runs: list[dict[str, Any]] = []
    started_load = load()
    with servers(argv, envs, work) as urls:
        warm_up(urls, dict.fromkeys(MODES, key))
        for n, mode in enumerate(abba(plan.repeat)):
            settle(database)
            wait_for_stats()
            scans = alert_scans(database)
            result = wrk(urls[mode], key, f"pg{n}{mode[0]}", plan.duration)
            wait_for_stats()
            runs.append(result | {"mode": mode, "alert_reads": alert_scans(database) - scans})
            print(f"  postgresql run {n} {mode}: {result['rps']:.0f} binds/s", flush=True)
    return {"runs": runs, "load_before": started_load, "load_after": load()} | summary(runs)


def prepare_postgres(database: str, env: dict[str, str], addresses: int) -> str:
    """Migrated, `addresses` synthetic EVM addresses (SQL, as bench_bind does); the API key."""
    addrpool("db", "upgrade", env=env)
    seed_pool_postgres(database, addresses)
    return str(json.loads(addrpool("keys", "create", "--name", "bench", "--json", env=env))["key"])


def prepare_sqlite(work: Path, env: dict[str, str], mode: str, addresses: int) -> dict[str, str]:
    """A database file of its own with `addresses` imported through `addrpool import`."""
    url = f"sqlite:///{work / f'cost-{mode}.db'}"
    mine = {**mode_env(env, mode), "ADDRPOOL_DATABASE_URL": url}
    pool_file = work / "cost-addresses.txt"
    if not pool_file.exists():
        pool_file.write_text("".join(f"0x{i + 1:040x}\n" for i in range(addresses)))
    addrpool("db", "upgrade", env=mine)
    addrpool("import", str(pool_file), "--protocol", "evm", env=mine)
    created = json.loads(addrpool("keys", "create", "--name", "bench", "--json", env=mine))
    return {**mine, "BENCH_KEY": created["key"]}


def run_sqlite(work: Path, env: dict[str, str], plan: CostPlan) -> dict[str, Any]:
    envs = {mode: prepare_sqlite(work, env, mode, plan.addresses) for mode in MODES}
    keys = {mode: mine.pop("BENCH_KEY") for mode, mine in envs.items()}
    argv = [str(VENV_BIN / "addrpool"), "serve"]
    runs: list[dict[str, Any]] = []
    started_load = load()
    with servers(argv, envs, work) as urls:
        warm_up(urls, keys)
        for n, mode in enumerate(abba(plan.repeat)):
            result = wrk(urls[mode], keys[mode], f"sq{n}{mode[0]}", plan.duration)
            runs.append(result | {"mode": mode})
            print(f"  sqlite run {n} {mode}: {result['rps']:.0f} binds/s", flush=True)
    return {"runs": runs, "load_before": started_load, "load_after": load()} | summary(runs)


def clean_env(log_level: str = "WARNING") -> dict[str, str]:
    """No stray ADDRPOOL_ setting from the caller's shell leaks into a measured process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return env | {"ADDRPOOL_LOG_LEVEL": log_level, "ADDRPOOL_SECRET_KEY": "bench-alerts-key"}


# -- one evaluation, in this process ----------------------------------------------------------


async def _per_call(call: Callable[[int], Awaitable[object]], count: int) -> dict[str, float]:
    """Wall and CPU milliseconds per call (CPU of every thread of this process: aiosqlite
    runs its statements in a thread; a PostgreSQL server process's CPU is not included)."""
    for n in range(10):  # warm: connections opened, statements compiled and cached
        await call(-n - 1)
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        await call(n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_ms": wall / count * 1000, "cpu_ms": cpu / count * 1000}


async def evaluation_cost(database_url: str, count: int) -> dict[str, Any]:
    """`evaluate_pool` (what `PoolAlerts` runs at most every 50 ms per process while binds
    arrive) beside a bind as the API runs it, one after another on an idle database."""
    db = Database(database_url)
    settings = AlertSettings(thresholds={"evm": 200})

    async def evaluate(_: int) -> None:
        await evaluate_pool(db, settings, "evm")

    async def bind(n: int) -> None:
        async def work(conn: AsyncConnection) -> object:
            reference, now = f"evaluation-cost-{n}", utc_now()
            return await allocation.bind(
                conn, reference=reference, protocol="evm", metadata=None, actor="bench", now=now
            )

        await db.run_write(work, single_statement=True)

    try:
        result: dict[str, Any] = {"evaluation": await _per_call(evaluate, count)}
        result["bind"] = await _per_call(bind, count)
    finally:
        await db.dispose()
    most = 1 / COALESCE_SECONDS  # evaluations per second and process, binds arriving non-stop
    result["cpu_share_at_most"] = result["evaluation"]["cpu_ms"] * most / 1000
    return result
