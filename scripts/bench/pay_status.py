"""The payer's status poll under load: `GET /pay/order/{orderId}/status` over HTTP, beside a
minimal FastAPI endpoint reading one order by its key in the same run (docs/performance.md,
The payer's page).

    .venv/bin/python -m scripts.bench.pay_status [--duration 10] [--repeat 3] [--orders 10000]

PostgreSQL, a fresh database `addrpool_bench_*`: `--orders` pending orders (each on its own
allocated address, created by SQL as the allocation writes them). `addrpool api --workers 2`
and the ceiling (`scripts/bench/baseline_read_app.py`, the same workers) up at once; wrk, 32
connections, each request a random order of the table; the targets alternate per round. The
page itself (`GET /pay/order/{orderId}`, HTML) is measured the same way, for reference.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.bind import VENV_BIN, addrpool, median_run, parse_wrk, psql, serving
from scripts.bench.orders import environment
from scripts.bench.report import finish

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "scripts" / "bench" / "pay_status.lua"
PORT_BASELINE, PORT_API = 18876, 18875


def seed_orders(database: str, count: int) -> None:
    """`count` pending orders, each on an allocated address, their window an hour away."""
    addresses = (
        "INSERT INTO address (protocol, address, hex20, status, created_at) "
        "SELECT 'evm', '0x' || h, h, 'allocated', now() FROM ("
        "SELECT substr(md5(i::text) || md5((i + 7)::text), 1, 40) AS h "
        "FROM generate_series(1, %d) i) s"
    )
    psql(database, addresses % int(count))
    psql(
        database,
        "INSERT INTO payment_order (id, order_reference, protocol, chain_id, currency, "
        "token_contract, decimals, amount, address_id, status, required_confirmations, "
        "payment_url, created_at, window_ends_at, grace_ends_at, created_by) "
        "SELECT 'ord_' || md5('order' || id), 'bench_' || id, 'evm', 'ethereum-sepolia', "
        "'USDT', '0x2222222222222222222222222222222222222222', 6, '10500000', id, 'pending', "
        "3, 'http://127.0.0.1/pay/order/ord_' || md5('order' || id), now(), "
        "now() + interval '1 hour', now() + interval '75 minutes', 'bench' FROM address",
    )
    for table in ("address", "payment_order"):
        psql(database, f"VACUUM ANALYZE {table}")
    psql(database, "CHECKPOINT")


def wrk(port: int, ids: Path, template: str, duration: int) -> dict:
    argv = ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", str(LUA)]
    argv += [f"http://127.0.0.1:{port}", "--", str(ids), template]
    output = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    try:
        return parse_wrk(output)
    except (AttributeError, KeyError):
        raise RuntimeError(f"wrk measured nothing on port {port} {template}:\n{output}") from None


def run(args: argparse.Namespace, workdir: Path) -> dict:
    database = f"addrpool_bench_{int(time.time())}"
    psql("postgres", f"CREATE DATABASE {database}")
    try:
        env = environment(f"postgresql://postgres@127.0.0.1:5432/{database}", workdir)
        addrpool("db", "upgrade", env=env)
        seed_orders(database, args.orders)
        ids = workdir / "orders.txt"
        listed = psql(database, "SELECT id FROM payment_order ORDER BY id")
        ids.write_text(listed.strip() + "\n")
        return _rounds(env, ids, args)
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _rounds(env: dict[str, str], ids: Path, args: argparse.Namespace) -> dict:
    workers = str(args.workers)
    baseline = [str(VENV_BIN / "python"), "-m", "uvicorn", "--no-access-log"]
    baseline += ["--log-level", "warning", "--factory", "scripts.bench.baseline_read_app:create"]
    baseline += ["--port", str(PORT_BASELINE), "--workers", workers]
    api = [str(VENV_BIN / "addrpool"), "api", "--port", str(PORT_API), "--workers", workers]
    targets = {
        "ceiling": (PORT_BASELINE, "/order/%s"),
        "status": (PORT_API, "/pay/order/%s/status"),
        "page": (PORT_API, "/pay/order/%s"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    with serving(baseline, env, PORT_BASELINE), serving(api, env, PORT_API):
        names = list(targets)
        for repetition in range(args.repeat):
            shift = repetition % len(names)  # drift within a round favours no target
            for name in names[shift:] + names[:shift]:
                port, template = targets[name]
                runs[name].append(wrk(port, ids, template, args.duration))
    result: dict = {name: median_run(samples) for name, samples in runs.items()}
    result["status_vs_ceiling"] = result["status"]["rps"] / result["ceiling"]["rps"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per target")
    parser.add_argument("--orders", type=int, default=10_000, help="pending orders")
    parser.add_argument("--workers", type=int, default=2, help="API processes")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="addrpool-bench-status-"))
    try:
        results = {"duration_s": args.duration, "connections": 32, **run(args, workdir)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return finish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
