"""Bind benchmark: throughput and latency over HTTP, each beside a ceiling from the same run.

    .venv/bin/python -m scripts.bench.bind [--duration 10] [--repeat 3] [--sqlite-only] [--json F]

What it does, all on this machine, all on loopback:
1. PostgreSQL: a fresh database `addrpool_bench_*`, migrated; a pool of addresses.
2. The ceiling: `scripts/bench/baseline_app.py` (FastAPI + the same claim statement, nothing
   else) under uvicorn with the same number of workers.
3. addrpool: `addrpool api --workers 2`, POST /api/v1/deposits/bind with a new reference per
   request (auth, validation, binding row, outbox event, envelope: the real thing).
   Load: wrk, 32 connections, 2 threads (`apt-get install wrk`).
4. Again after `--bound` addresses are bound (filled in bulk by SQL, then ANALYZE), with the
   claim's EXPLAIN under a generic plan (what asyncpg's cached statements use).
5. SQLite: one `addrpool serve` process (the embedded default: the watchers, webhook delivery
   and alerts run beside the API), and beside it the bare claim's ceiling — the same
   `baseline_app.py` on a copy of the same file, same pragmas, one process, claiming as the
   bind does (BEGIN IMMEDIATE, the claim, COMMIT, in one trip to the writer's thread, trips
   that queue together committed together); both up at once, the same wrk load alternating.
The pool's addresses are synthetic (lower-case hex from md5, or counted): the claim does not
look at them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from scripts.bench.report import finish

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
LUA = ROOT / "scripts" / "bench" / "bind.lua"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]
PORT_BASELINE, PORT_API = 18766, 18765
SQLITE_POOL = 100_000
WARM_UP_SECONDS = 2
SERVER_SETTINGS = {
    "ADDRPOOL_LOG_LEVEL": "WARNING",
    # The limiter stays in the path (its cost is scripts/bench/rate_limits.py's to measure),
    # with room above any rate measured here: its default, 2,000 a second per key and
    # process, is within reach of one SQLite process, and a 429 is not a bind.
    "ADDRPOOL_RATE_LIMITS__PER_SECOND": "1000000",
    "ADDRPOOL_RATE_LIMITS__PER_MINUTE": "60000000",
}


def psql(database: str, sql: str) -> str:
    return subprocess.run(
        [*PSQL, "-d", database, "-c", sql], check=True, capture_output=True, text=True
    ).stdout


def addrpool(*args: str, env: dict[str, str]) -> str:
    binary = str(VENV_BIN / "addrpool")
    return subprocess.run(
        [binary, *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def seed_pool_postgres(database: str, count: int) -> None:
    hex40 = "substr(md5(i::text) || md5((i + 7)::text), 1, 40)"
    psql(
        database,
        "INSERT INTO address (protocol, address, hex20, status, created_at) "
        "SELECT 'evm', '0x' || h, h, 'available', now() FROM ("
        f"SELECT {hex40} AS h FROM generate_series(1, {int(count)}) i"
        # In the unique indexes' order: md5 order put every row on a random leaf of both,
        # and ten million took some 25 minutes to seed.
        ") s ORDER BY h ON CONFLICT DO NOTHING",
    )
    settle(database)


def settle(database: str) -> None:
    """Both rounds start alike: tables vacuumed and analysed, no checkpoint pending."""
    for table in ("address", "binding", "event"):  # VACUUM cannot share a transaction
        psql(database, f"VACUUM ANALYZE {table}")
    psql(database, "CHECKPOINT")


def bind_in_bulk(database: str, count: int) -> None:
    """The state after `count` binds: bound addresses, their bindings and events."""
    psql(
        database,
        f"""
WITH picked AS (
  SELECT id, address FROM address WHERE protocol = 'evm' AND status = 'available'
  ORDER BY recycled_at NULLS FIRST, id LIMIT {int(count)}
), marked AS (
  UPDATE address a SET status = 'bound', last_reference = 'bulk_' || a.id
    FROM picked WHERE a.id = picked.id RETURNING a.id, a.address
), bound AS (
  INSERT INTO binding (deposit_reference, protocol, address_id, bound_at, bound_by)
  SELECT 'bulk_' || id, 'evm', id, now(), 'bench' FROM marked RETURNING id
)
INSERT INTO event (id, type, data, created_at)
SELECT 'evt_bulk_' || id, 'deposit.address_bound', json_build_object('address', address), now()
  FROM marked;
""",
    )
    settle(database)


def explain_claim(database: str) -> str:
    return psql(
        database,
        """
SET plan_cache_mode = force_generic_plan;
PREPARE claim(text, timestamptz) AS
  SELECT id FROM address
   WHERE protocol = $1 AND status = 'available' AND (cooldown_until IS NULL OR cooldown_until <= $2)
   ORDER BY recycled_at ASC NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE claim('evm', now());
""",
    )


@contextmanager
def serving(argv: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    # Never an unread PIPE: a full pipe blocks the server's logging, and with it the server.
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=float(os.environ.get("BENCH_STOP_TIMEOUT", "60")))


def wrk(url: str, path: str, key: str, prefix: str, duration: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c32",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(LUA),
            url,
            "--",
            path,
            key,
            prefix,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_wrk(output)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.M))  # "1.43s " is padded
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)$", output, re.M)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


def run_postgres_round(database: str, key: str, label: str, args: argparse.Namespace) -> dict:
    """Both servers up at once; the loads alternate so drift hits both; medians reported."""
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    env = {**os.environ, "ADDRPOOL_DATABASE_URL": url, **SERVER_SETTINGS}
    workers = str(args.workers)
    baseline_argv = [*_uvicorn(), "--factory", "scripts.bench.baseline_app:create"]
    baseline_argv += ["--port", str(PORT_BASELINE), "--workers", workers]
    api_argv = [str(VENV_BIN / "addrpool"), "api", "--port", str(PORT_API), "--workers", workers]
    targets = {
        "ceiling_in_transaction": (PORT_BASELINE, "/claim"),
        "ceiling": (PORT_BASELINE, "/claim-autocommit"),
        "bind": (PORT_API, "/api/v1/deposits/bind"),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    load_before = os.getloadavg()
    with serving(baseline_argv, env, PORT_BASELINE), serving(api_argv, env, PORT_API):
        warm_up(targets, key, label)
        names = list(targets)
        for repetition in range(args.repeat):
            # Rotate the order so that drift within a round does not favour one target.
            shift = repetition % len(names)
            for name in names[shift:] + names[:shift]:
                port, path = targets[name]
                settle(database)  # every run starts from the same vacuumed, checkpointed state
                prefix = f"{label}{repetition}{name[0]}"
                runs[name].append(wrk(f"http://127.0.0.1:{port}", path, key, prefix, args.duration))
    result: dict = {name: median_run(samples) for name, samples in runs.items()}
    result["ratio"] = result["bind"]["rps"] / result["ceiling"]["rps"]
    result["ratio_to_in_transaction"] = (
        result["bind"]["rps"] / result["ceiling_in_transaction"]["rps"]
    )
    result["pair_ratios"] = pair_ratios(runs["bind"], runs["ceiling"])
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    return result


def warm_up(targets: dict[str, tuple[int, str]], key: str, label: str) -> None:
    """An unmeasured run on each target first. A server's first requests open its pool's
    database connections and prepare its statements; without this the first target measured
    on a server pays for that inside its figure — with `--repeat 1` the bind's one run always
    did, as the ceiling's server had warmed up on its in-transaction run before."""
    for name, (port, path) in targets.items():
        wrk(f"http://127.0.0.1:{port}", path, key, f"{label}w{name[0]}", WARM_UP_SECONDS)


def pair_ratios(binds: list[dict[str, float]], ceilings: list[dict[str, float]]) -> list[float]:
    """Each repetition's bind ÷ its ceiling, measured minutes apart at most: on this shared
    machine the ratio of the medians can pair runs from different moments (docs/performance.md)."""
    return [
        round(bind["rps"] / ceiling["rps"], 2)
        for bind, ceiling in zip(binds, ceilings, strict=True)
    ]


def median_run(samples: list[dict[str, float]]) -> dict[str, float]:
    summary = {k: statistics.median(s[k] for s in samples) for k in ("rps", "p50_ms", "p99_ms")}
    summary["non_2xx"] = sum(s["non_2xx"] for s in samples)
    summary["rps_runs"] = [round(s["rps"]) for s in samples]  # type: ignore[assignment]
    summary["p99_ms_runs"] = [round(s["p99_ms"], 1) for s in samples]  # type: ignore[assignment]
    return summary


def run_sqlite(args: argparse.Namespace) -> dict:
    """One `addrpool serve` process on a SQLite file (the embedded default), beside the bare
    claim's ceiling on a copy of the same file, both up at once, their loads alternating."""
    # Enough for the ceiling's runs, the faster of the two: a pool that runs dry answers 503s
    # at once, and a rate of those is no claim rate.
    pool = args.sqlite_pool or max(SQLITE_POOL, args.repeat * args.duration * 6_000)
    workdir = Path(tempfile.mkdtemp(prefix="addrpool-bench-"))
    try:
        return _run_sqlite_in(workdir, args, pool)
    finally:
        shutil.rmtree(workdir)


def _run_sqlite_in(workdir: Path, args: argparse.Namespace, pool: int) -> dict:
    bind_file, ceiling_file = workdir / "bench.db", workdir / "ceiling.db"
    env = {**os.environ, "ADDRPOOL_DATABASE_URL": f"sqlite:///{bind_file}", **SERVER_SETTINGS}
    addresses = workdir / "addresses.txt"
    addresses.write_text("\n".join(f"0x{i + 1:040x}" for i in range(pool)) + "\n")
    addrpool("import", str(addresses), "--protocol", "evm", env=env)
    key = json.loads(addrpool("keys", "create", "--name", "bench", "--json", env=env))["key"]
    shutil.copy(bind_file, ceiling_file)  # every process has closed it: no WAL left beside it
    ceiling_env = {**env, "ADDRPOOL_DATABASE_URL": f"sqlite:///{ceiling_file}"}
    ceiling_argv = [*_uvicorn(), "--factory", "scripts.bench.baseline_app:create"]
    ceiling_argv += ["--port", str(PORT_BASELINE)]
    bind_argv = [str(VENV_BIN / "addrpool"), "serve", "--port", str(PORT_API)]
    targets = {
        "ceiling": (PORT_BASELINE, "/claim"),
        "bind": (PORT_API, "/api/v1/deposits/bind"),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    load_before = os.getloadavg()
    with serving(ceiling_argv, ceiling_env, PORT_BASELINE), serving(bind_argv, env, PORT_API):
        names = list(targets)
        for repetition in range(args.repeat):
            shift = repetition % len(names)
            for name in names[shift:] + names[:shift]:
                port, path = targets[name]
                prefix = f"s{repetition}{name[0]}"
                runs[name].append(wrk(f"http://127.0.0.1:{port}", path, key, prefix, args.duration))
    result: dict = {name: median_run(samples) for name, samples in runs.items()}
    result["ratio"] = result["bind"]["rps"] / result["ceiling"]["rps"]
    result["pair_ratios"] = pair_ratios(runs["bind"], runs["ceiling"])
    result["pool"] = pool
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    warn_of_failures(result)
    return result


def warn_of_failures(result: dict) -> None:
    """On stderr: each target whose answers were not all 2xx (a 503, a 429 is no claim)."""
    for name, summary in result.items():
        if isinstance(summary, dict) and summary.get("non_2xx"):
            print(f"warning: {name} had {summary['non_2xx']:.0f} answers not 2xx", file=sys.stderr)


def _uvicorn() -> list[str]:
    return [str(VENV_BIN / "python"), "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per target")
    parser.add_argument("--pool", type=int, default=1_000_000, help="addresses in the pool")
    parser.add_argument("--bound", type=int, default=500_000, help="bound before the second round")
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL: uvicorn workers")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--sqlite-only", action="store_true", help="SQLite only")
    parser.add_argument(
        "--sqlite-pool",
        type=int,
        help=f"addresses in the SQLite pool (default: {SQLITE_POOL:,}, more for long runs)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.sqlite_only:
        results = {"duration_s": args.duration, "connections": 32, "sqlite": run_sqlite(args)}
        return finish(results, args.json)
    database = f"addrpool_bench_{int(time.time())}"
    psql("postgres", f"CREATE DATABASE {database}")
    try:
        results = run_all(database, args)
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    return finish(results, args.json)


def run_all(database: str, args: argparse.Namespace) -> dict:
    env = {
        **os.environ,
        "ADDRPOOL_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
    }
    addrpool("db", "upgrade", env=env)
    seed_pool_postgres(database, args.pool)
    key = json.loads(addrpool("keys", "create", "--name", "bench", "--json", env=env))["key"]
    results: dict = {"duration_s": args.duration, "connections": 32, "workers": args.workers}
    results["fresh"] = run_postgres_round(database, key, "fresh", args)
    print("fresh pool:", json.dumps(results["fresh"]), flush=True)
    bind_in_bulk(database, args.bound)
    results["bound_before_second_round"] = int(
        psql(database, "SELECT count(*) FROM address WHERE status = 'bound'").strip()
    )
    results["explain_generic_plan"] = explain_claim(database)
    results["after_bound"] = run_postgres_round(database, key, "after", args)
    results["after_vs_fresh"] = (
        results["after_bound"]["bind"]["rps"] / results["fresh"]["bind"]["rps"]
    )
    print("after bulk bind:", json.dumps(results["after_bound"]), flush=True)
    if not args.skip_sqlite:
        results["sqlite"] = run_sqlite(args)
    return results


if __name__ == "__main__":
    sys.exit(main())
