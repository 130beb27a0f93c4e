"""Upstream-mode benchmark: bind latency through the front vs directly upstream.

    .venv/bin/python scripts/bench/upstream.py [--binds 500] [--addresses 5000] [--json PATH]

All on this machine, all on loopback, both on SQLite:
1. "PayIn": an `addrpool serve` in local mode with `--addresses` EVM addresses and an API key.
2. The front: an `addrpool serve` with `ADDRPOOL_BINDING_BACKEND=payin` in front of it, the
   same addresses imported (so it accepts what PayIn hands out) and its own key.
3. One client, sequential requests (latency, not throughput): `--binds` binds of new references
   directly against PayIn and `--binds` through the front, alternating one by one so both see
   the same machine state. A front bind is PayIn's bind plus the front's work: the address
   check against its pool and the local binding record (address, binding, event).
Reports median, p90, p99 and max per target, and the overhead (front − direct) at each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from scripts.bench.bind import addrpool, serving
from scripts.bench.imports import write_file
from scripts.bench.report import save_json

ROOT = Path(__file__).resolve().parents[2]
PORT_UPSTREAM, PORT_FRONT = 18781, 18782


def base_env(work: Path, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return env | {
        "ADDRPOOL_DATABASE_URL": f"sqlite:///{work / name}.db",
        "ADDRPOOL_LOG_LEVEL": "WARNING",
        "ADDRPOOL_RECONCILE__ENABLED": "false",
    }


def prepare(env: dict[str, str], addresses: Path) -> str:
    """Import the pool and return an admin key."""
    addrpool("import", str(addresses), "--protocol", "evm", "--json", env=env)
    created = addrpool("keys", "create", "--name", "bench", "--scopes", "admin", "--json", env=env)
    return str(json.loads(created)["key"])


def timed_bind(client: httpx.Client, url: str, key: str, reference: str) -> float:
    started = time.perf_counter()
    answer = client.post(
        url + "/api/v1/deposits/bind",
        json={"depositReference": reference, "protocol": "evm"},
        headers={"Authorization": f"Bearer {key}"},
    )
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 201:
        raise RuntimeError(f"bind failed: {answer.status_code} {answer.text}")
    return elapsed


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(percentile(samples, 0.90), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "max_ms": round(max(samples), 2),
    }


def measure(binds: int, keys: dict[str, str]) -> dict[str, list[float]]:
    urls = {
        "direct": f"http://127.0.0.1:{PORT_UPSTREAM}",
        "front": f"http://127.0.0.1:{PORT_FRONT}",
    }
    samples: dict[str, list[float]] = {"direct": [], "front": []}
    with httpx.Client(timeout=30) as client:
        for target in ("direct", "front"):  # warm both: first requests pay for imports
            for n in range(20):
                timed_bind(client, urls[target], keys[target], f"warm-{target}-{n}")
        for n in range(binds):
            for target in ("direct", "front"):
                samples[target].append(
                    timed_bind(client, urls[target], keys[target], f"{target}-{n}")
                )
    return samples


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="addrpool-bench-upstream-") as tmp:
        work = Path(tmp)
        addresses = work / "addresses.csv"
        write_file(addresses, "evm", args.addresses)
        upstream_env = base_env(work, "payin")
        upstream_key = prepare(upstream_env, addresses)
        front_env = base_env(work, "front") | {
            "ADDRPOOL_BINDING_BACKEND": "payin",
            "ADDRPOOL_UPSTREAM_URL": f"http://127.0.0.1:{PORT_UPSTREAM}",
            "ADDRPOOL_UPSTREAM_API_KEY": upstream_key,
        }
        front_key = prepare(front_env, addresses)
        serve = [str(ROOT / ".venv" / "bin" / "addrpool"), "serve", "--port"]
        with (
            serving([*serve, str(PORT_UPSTREAM)], upstream_env, PORT_UPSTREAM),
            serving([*serve, str(PORT_FRONT)], front_env, PORT_FRONT),
        ):
            samples = measure(args.binds, {"direct": upstream_key, "front": front_key})
    direct, front = summary(samples["direct"]), summary(samples["front"])
    overhead = {k: round(front[k] - direct[k], 2) for k in direct}
    return {"binds": args.binds, "direct": direct, "front": front, "overhead": overhead}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binds", type=int, default=500)
    parser.add_argument("--addresses", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.addresses < 2 * args.binds + 60:
        parser.error("--addresses must cover every bind of both targets (2 x binds + 60)")
    load_before = os.getloadavg()
    results = run(args)
    results["load"] = {"before": load_before, "after": os.getloadavg()}
    print("| target | median ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for target in ("direct", "front", "overhead"):
        cells = [results[target][k] for k in ("median_ms", "p90_ms", "p99_ms", "max_ms")]
        print(f"| {target} | " + " | ".join(str(c) for c in cells) + " |")
    print(f"load (1/5/15 min) before {load_before}, after {results['load']['after']}")
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
