"""Alert benchmark: bind → pool-low alert at an HTTP hook, and what alerting costs a bind.

    .venv/bin/python scripts/bench/alerts.py [--samples 12] [--duration 8] [--repeat 3]
        [--addresses 200000] [--evaluations 500] [--backends sqlite,postgresql]
        [--parts latency,cost,evaluation] [--json PATH]
    smoke run: --samples 2 --duration 2 --repeat 1 --addresses 5000 --evaluations 50

All on this machine, all on loopback, with the real `addrpool` commands; each backend gets a
fresh database (a SQLite file in a temporary directory, or PostgreSQL
`addrpool_bench_alerts_<part>`, dropped at the end), migrated with `addrpool db upgrade`.

1. Latency (`scripts/bench/alerts_latency.py`): the pool is bound down through the EVM threshold
   (200) while an HTTP hook points at a recording receiver; the figure is the time from the
   response of the bind that crosses to the arrival of the `fired` POST (goal ≤ 2 s), and from
   the response of the import that lifts the pool above 220 to the `resolved` POST. SQLite runs
   `addrpool serve`; PostgreSQL `addrpool api --workers 2` beside `addrpool worker`.
   `--samples` measured episodes after one warm-up; median, p90, max.
2. Cost (`scripts/bench/alerts_cost.py`): bind throughput (wrk, `scripts/bench/bind.lua`,
   32 connections) against two servers on the same pool, alerts enabled (threshold 200, so
   every created bind schedules an evaluation) and disabled, alternated ABBA for `--repeat`
   runs each of `--duration` s after a warm-up; medians, and enabled/disabled as the median of
   the back-to-back pairs' ratios (goal ≥ 0.95). PostgreSQL:
   `addrpool api --workers 2` on `--addresses` EVM addresses; SQLite: `addrpool serve`.
3. Evaluation (`--evaluations`): in this process, one after another on an idle database, the
   post-bind evaluation (`evaluate_pool`) and a bind as the API runs it; wall and CPU ms each.
   `PoolAlerts` runs at most one evaluation per 50 ms per process however fast binds arrive,
   so this bounds what alerting takes from a process — a figure the loaded machine blurs less
   than the throughput of part 2.
The load average is recorded before and after each part: the machine has 2 cores and may be
running other work, which is why the cost runs alternate.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.bench.alerts_cost import (
    CostPlan,
    clean_env,
    evaluation_cost,
    load,
    prepare_postgres,
    prepare_sqlite,
)
from scripts.bench.alerts_cost import run_postgres as cost_postgres
from scripts.bench.alerts_cost import run_sqlite as cost_sqlite
from scripts.bench.alerts_latency import Setup
from scripts.bench.alerts_latency import measure as measure_latency
from scripts.bench.bind import addrpool, psql
from scripts.bench.report import markdown, percentile, save_json

LATENCY_GOAL = 2.0
COST_GOAL = 0.95  # enabled / disabled throughput


# -- databases ---------------------------------------------------------------------------------


def postgres_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def fresh_postgres(name: str) -> str:
    psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {name}")
    return postgres_url(name)


def drop_postgres(name: str) -> None:
    psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- the parts ---------------------------------------------------------------------------------


def run_latency(backend: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    name = "addrpool_bench_alerts_latency"
    url = fresh_postgres(name) if backend == "postgresql" else f"sqlite:///{work / 'lat.db'}"
    env = clean_env() | {"ADDRPOOL_DATABASE_URL": url}
    try:
        addrpool("db", "upgrade", env=env)
        before = load()
        result = measure_latency(Setup(backend, url, env, work, args.samples))
        return result | {"load_before": before, "load_after": load()}
    finally:
        if backend == "postgresql":
            drop_postgres(name)


def run_cost(backend: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    plan = CostPlan(args.duration, args.repeat, args.addresses)
    if backend == "sqlite":
        return cost_sqlite(work, clean_env(), plan)
    name = "addrpool_bench_alerts_cost"
    env = clean_env() | {"ADDRPOOL_DATABASE_URL": fresh_postgres(name)}
    try:
        key = prepare_postgres(name, env, args.addresses)
        return cost_postgres(name, key, env, plan, work) | {"addresses": args.addresses}
    finally:
        drop_postgres(name)


def run_evaluation(backend: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if backend == "sqlite":
        url = prepare_sqlite(work, clean_env(), "enabled", args.addresses)["ADDRPOOL_DATABASE_URL"]
        return asyncio.run(evaluation_cost(url, args.evaluations))
    name = "addrpool_bench_alerts_evaluation"
    env = clean_env() | {"ADDRPOOL_DATABASE_URL": fresh_postgres(name)}
    try:
        prepare_postgres(name, env, args.addresses)
        return asyncio.run(evaluation_cost(env["ADDRPOOL_DATABASE_URL"], args.evaluations))
    finally:
        drop_postgres(name)


# -- the report --------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> list[str]:
    return [
        f"{statistics.median(values):.3f}",
        f"{percentile(values, 0.9):.3f}",
        f"{max(values):.3f}",
    ]


def latency_rows(backend: str, result: dict[str, Any]) -> list[list[str]]:
    samples = result["samples"]
    fired = [s["fired_at"] - s["crossing_answered_at"] for s in samples]
    evaluated = [s["fired_transition_at"] - s["crossing_answered_at"] for s in samples]
    delivered = [s["fired_at"] - s["fired_transition_at"] for s in samples]
    resolved = [s["resolved_at"] - s["import_answered_at"] for s in samples]
    goal = "yes" if max(fired) <= LATENCY_GOAL else "**no**"
    return [
        [backend, "bind → fired POST", str(len(fired)), *spread(fired), goal],
        [backend, "  bind → transition written", "", *spread(evaluated), ""],
        [backend, "  transition → POST arrived", "", *spread(delivered), ""],
        [backend, "import → resolved POST", str(len(resolved)), *spread(resolved), ""],
    ]


def cost_rows(backend: str, result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for n, run in enumerate(result["runs"]):
        reads = f"{run['alert_reads']:,}" if "alert_reads" in run else "–"
        rows.append(
            [backend, str(n + 1), run["mode"], f"{run['rps']:,.0f}", f"{run['p50_ms']:.1f}",
             f"{run['p99_ms']:.1f}", f"{run['non_2xx']:.0f}", reads]
        )  # fmt: skip
    return rows


def cost_summary_row(backend: str, result: dict[str, Any]) -> list[str]:
    on, off = result["enabled"], result["disabled"]
    ratio = result["ratio"]
    return [
        backend,
        f"{on['rps']:,.0f} ({', '.join(map(str, on['rps_runs']))})",
        f"{off['rps']:,.0f} ({', '.join(map(str, off['rps_runs']))})",
        f"{ratio:.3f} ({ratio - 1:+.1%})",
        f"**{result['pair_ratio']:.3f}** ({', '.join(map(str, result['pair_ratios']))})",
        "yes" if result["pair_ratio"] >= COST_GOAL else "**no**",
        f"{on['p50_ms']:.1f} / {off['p50_ms']:.1f}",
        f"{result['load_before']} → {result['load_after']}",
    ]


def evaluation_row(backend: str, result: dict[str, Any]) -> list[str]:
    evaluation, bind = result["evaluation"], result["bind"]
    return [
        backend,
        f"{evaluation['wall_ms']:.2f} / {evaluation['cpu_ms']:.2f}",
        f"{bind['wall_ms']:.2f} / {bind['cpu_ms']:.2f}",
        f"{evaluation['cpu_ms'] / bind['cpu_ms']:.2f}",
        f"{result['cpu_share_at_most']:.1%}",
    ]


def report(results: dict[str, Any]) -> str:
    out = [f"command: {results['command']}", ""]
    latency = results.get("latency", {})
    if latency:
        out += ["1. Bind that crosses the threshold → alert POST at the hook (seconds)", ""]
        header = ["backend", "what", "samples", "median", "p90", "max", f"≤ {LATENCY_GOAL} s"]
        rows = [row for backend, r in latency.items() for row in latency_rows(backend, r)]
        out += [markdown(header, rows), ""]
        for backend, r in latency.items():
            out.append(
                f"{backend}: load {r['load_before']} → {r['load_after']}; pool-low POSTs after "
                f"the last sample: {len(r['later_posts'])}; other alerts: {r['other_alerts']}"
            )
        out.append("")
    cost = results.get("cost", {})
    if cost:
        out += ["2. Bind throughput with and without alerting (wrk, 32 connections)", ""]
        header = ["backend", "run", "alerts", "binds/s", "p50 ms", "p99 ms", "non-2xx",
                  "alert table reads"]  # fmt: skip
        rows = [row for backend, r in cost.items() for row in cost_rows(backend, r)]
        out += [markdown(header, rows), ""]
        header = ["backend", "enabled binds/s (runs)", "disabled binds/s (runs)",
                  "ratio of the medians", "median of the pair ratios (pairs)", f"≥ {COST_GOAL}",
                  "p50 ms on / off", "load"]  # fmt: skip
        out += [markdown(header, [cost_summary_row(b, r) for b, r in cost.items()]), ""]
    evaluation = results.get("evaluation", {})
    if evaluation:
        out += ["3. One post-bind evaluation beside one bind, in one process, one at a time", ""]
        header = ["backend", "evaluation ms wall / CPU", "bind ms wall / CPU",
                  "evaluation / bind (CPU)", "CPU of one core at ≤ 20 evaluations/s"]  # fmt: skip
        out.append(markdown(header, [evaluation_row(b, r) for b, r in evaluation.items()]))
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--samples", type=int, default=12, help="latency episodes measured")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per mode")
    parser.add_argument("--addresses", type=int, default=200_000, help="pool for the cost runs")
    parser.add_argument("--evaluations", type=int, default=500, help="timed, in process")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--parts", default="latency,cost,evaluation")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None and "cost" in args.parts:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    shown = vars(args) | {"json": str(args.json)}  # a copy: vars() is the namespace itself
    results: dict[str, Any] = {"command": shlex.join(sys.argv), "args": shown}
    parts = {"latency": run_latency, "cost": run_cost, "evaluation": run_evaluation}
    work = Path(tempfile.mkdtemp(prefix="bench-alerts-"))  # kept if a part fails: the logs
    for part in args.parts.split(","):
        for backend in args.backends.split(","):
            print(f"{part} on {backend} (load {load()})", flush=True)
            (work / f"{part}-{backend}").mkdir()
            result = parts[part](backend, args, work / f"{part}-{backend}")
            results.setdefault(part, {})[backend] = result
            save_json(args.json, results)
    shutil.rmtree(work)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
