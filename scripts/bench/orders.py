"""Order creation benchmark: throughput and latency over HTTP beside the bind benchmark's
one-statement ceiling, measured in the same run (docs/performance.md, Orders).

    .venv/bin/python scripts/bench/orders.py [--duration 10] [--repeat 3] [--skip-sqlite]

1. PostgreSQL: a fresh database `addrpool_bench_*`, migrated; a pool of `--pool` addresses.
2. The ceiling: `scripts/bench/baseline_app.py` (FastAPI + the bare claim statement in
   autocommit, nothing else) under uvicorn with the same number of workers.
3. addrpool: `addrpool api --workers 2` with a watched chain (ethereum-sepolia, its RPC never
   called by the API), POST /api/v1/orders with a new orderReference per request (auth,
   validation, the one-statement allocation: order row, address, `order.created` event,
   envelope). Binds are measured too, the same way, for comparison.
   Load: wrk, 32 connections, 2 threads (`apt-get install wrk`); targets alternate per round.
4. SQLite: one `addrpool serve` process, same load: order creation (one trip to the writer's
   thread, committed in groups, as binds are) and binds, alternating.
Rate limits are raised out of reach, as in the bind benchmark: a 429 is not an order.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.bind import (
    SERVER_SETTINGS,
    SQLITE_POOL,
    VENV_BIN,
    addrpool,
    median_run,
    parse_wrk,
    psql,
    seed_pool_postgres,
    serving,
    settle,
    warn_of_failures,
)
from scripts.bench.report import finish

ROOT = Path(__file__).resolve().parents[2]
# Not the bind benchmark's ports: both may run on one machine.
PORT_BASELINE, PORT_API = 18866, 18865
LUA = {
    "orders": ROOT / "scripts" / "bench" / "orders.lua",
    "bind": ROOT / "scripts" / "bench" / "bind.lua",
}
CONFIG = """
[chains.ethereum-sepolia]
rpc_urls = ["http://127.0.0.1:9/rpc"]
tokens.USDT = { contract = "0x2222222222222222222222222222222222222222", decimals = 6 }
"""


def wrk(url: str, path: str, key: str, prefix: str, duration: int, script: Path) -> dict:
    argv = ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", str(script), url]
    output = subprocess.run(
        [*argv, "--", path, key, prefix], check=True, capture_output=True, text=True
    ).stdout
    try:
        return parse_wrk(output)
    except (AttributeError, KeyError):
        raise RuntimeError(f"wrk measured nothing on {url}{path}:\n{output}") from None


def environment(database_url: str, workdir: Path) -> dict[str, str]:
    config = workdir / "addrpool.toml"
    config.write_text(CONFIG)
    return {
        **os.environ,
        "ADDRPOOL_DATABASE_URL": database_url,
        "ADDRPOOL_CONFIG": str(config),
        **SERVER_SETTINGS,
        # The benchmark measures creation, not the pool-low alert of a pool it empties.
        "ADDRPOOL_ALERTS__ENABLED": "false",
    }


def run_postgres(args: argparse.Namespace, workdir: Path) -> dict:
    database = f"addrpool_bench_{int(time.time())}"
    psql("postgres", f"CREATE DATABASE {database}")
    try:
        env = environment(f"postgresql://postgres@127.0.0.1:5432/{database}", workdir)
        addrpool("db", "upgrade", env=env)
        seed_pool_postgres(database, args.pool)
        key = json.loads(addrpool("keys", "create", "--name", "bench", "--json", env=env))["key"]
        return _postgres_round(database, env, key, args)
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _postgres_round(database: str, env: dict[str, str], key: str, args: argparse.Namespace) -> dict:
    workers = str(args.workers)
    uvicorn = [str(VENV_BIN / "python"), "-m", "uvicorn", "--no-access-log"]
    baseline = [
        *uvicorn,
        "--log-level",
        "warning",
        "--factory",
        "scripts.bench.baseline_app:create",
    ]
    baseline += ["--port", str(PORT_BASELINE), "--workers", workers]
    api = [str(VENV_BIN / "addrpool"), "api", "--port", str(PORT_API), "--workers", workers]
    targets = {
        "ceiling": (PORT_BASELINE, "/claim-autocommit", "bind"),
        "orders": (PORT_API, "/api/v1/orders", "orders"),
        "bind": (PORT_API, "/api/v1/deposits/bind", "bind"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    load_before = os.getloadavg()
    with serving(baseline, env, PORT_BASELINE), serving(api, env, PORT_API):
        names = list(targets)
        for repetition in range(args.repeat):
            shift = repetition % len(names)  # drift within a round favours no target
            for name in names[shift:] + names[:shift]:
                port, path, script = targets[name]
                settle(database)
                prefix = f"r{repetition}{name[0]}"
                url = f"http://127.0.0.1:{port}"
                runs[name].append(wrk(url, path, key, prefix, args.duration, LUA[script]))
    result: dict = {name: median_run(samples) for name, samples in runs.items()}
    result["orders_vs_ceiling"] = result["orders"]["rps"] / result["ceiling"]["rps"]
    result["orders_vs_bind"] = result["orders"]["rps"] / result["bind"]["rps"]
    result["orders_created"] = int(psql(database, "SELECT count(*) FROM payment_order").strip())
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    return result


def run_sqlite(args: argparse.Namespace, workdir: Path) -> dict:
    env = environment(f"sqlite:///{workdir / 'bench.db'}", workdir)
    # Enough for both targets' runs, at up to 3,000 a second each: a pool that runs dry answers
    # 503s at once, and a rate of those is no creation rate.
    pool = args.sqlite_pool or max(SQLITE_POOL, args.repeat * args.duration * 2 * 3_000)
    addresses = workdir / "addresses.txt"
    addresses.write_text("\n".join(f"0x{i + 1:040x}" for i in range(pool)) + "\n")
    addrpool("import", str(addresses), "--protocol", "evm", env=env)
    key = json.loads(addrpool("keys", "create", "--name", "bench", "--json", env=env))["key"]
    argv = [str(VENV_BIN / "addrpool"), "serve", "--port", str(PORT_API)]
    url = f"http://127.0.0.1:{PORT_API}"
    targets = {"orders": "/api/v1/orders", "bind": "/api/v1/deposits/bind"}
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    load_before = os.getloadavg()
    with serving(argv, env, PORT_API):
        names = list(targets)
        for repetition in range(args.repeat):
            shift = repetition % len(names)
            for name in names[shift:] + names[:shift]:
                prefix = f"s{repetition}{name[0]}"
                runs[name].append(wrk(url, targets[name], key, prefix, args.duration, LUA[name]))
    result: dict = {name: median_run(samples) for name, samples in runs.items()}
    result["orders_vs_bind"] = result["orders"]["rps"] / result["bind"]["rps"]
    result["pool"] = pool
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per target")
    parser.add_argument("--pool", type=int, default=1_000_000, help="PostgreSQL pool size")
    parser.add_argument(
        "--sqlite-pool",
        type=int,
        help=f"SQLite pool size (default: {SQLITE_POOL:,}, more for long runs)",
    )
    parser.add_argument("--workers", type=int, default=2, help="API processes (PostgreSQL)")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="addrpool-bench-orders-"))
    results: dict = {"duration_s": args.duration, "connections": 32, "workers": args.workers}
    try:
        if not args.skip_postgres:
            results["postgresql"] = run_postgres(args, workdir)
            warn_of_failures(results["postgresql"])
            print("postgresql:", json.dumps(results["postgresql"]), flush=True)
        if not args.skip_sqlite:
            results["sqlite"] = run_sqlite(args, workdir)
            warn_of_failures(results["sqlite"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return finish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
