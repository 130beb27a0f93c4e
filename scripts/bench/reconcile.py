"""Reconciliation benchmark: one run over 100,000 deposits, and binds while it runs.

    .venv/bin/python scripts/bench/reconcile.py [--deposits 100000] [--chain-reads 1000]
        [--duration 20] [--cycles 4] [--backends postgresql,sqlite] [--json PATH] [--profile]
        [--pool 400000] [--nice 19] [--duty-cycle 0.1]
    smoke run: --deposits 5000 --chain-reads 200 --pool 60000 --duration 5 --cycles 2

Goal: reconciliation of 100,000 deposits with chain re-reads of the most recent 1,000 in
≤ 30 s, binds no more than 10% slower while it runs. All on this machine, all on loopback.

Setup, per backend (a fresh database: PostgreSQL `addrpool_bench_recon`, or a SQLite file):
- `--pool` EVM addresses and one webhook endpoint subscribed to the deposit events;
- history (scripts/bench/reconcile_data.py): `--deposits` minus `--chain-reads` completed
  deposits detected over the last week (the reconciliation window) but before the recent
  ones, two per bound address, each with its binding and address_bound event, a
  deposit.pending and a deposit.confirmed event carrying the full payload, and one succeeded
  delivery per deposit event — written in bulk with SQLAlchemy Core, not through the watcher;
- recent (scripts/bench/reconcile_chain.py): on anvil with the test USDT, `--chain-reads`
  addresses bound with `allocation.bind`, one real `transfer` to each (`--per-block` a
  block), confirmed, recorded by the real `ChainWatcher`; their deliveries then marked
  succeeded and the deposits completed, as the delivery worker would;
- VACUUM ANALYZE (PostgreSQL) or ANALYZE (SQLite).
Measured:
1. `chains.checks.reconciler.reconcile(settings, db)` with the default window (7 days) and
   `chain_reads = --chain-reads`, `--runs` times in this process flat out (duty cycle 1),
   none of the bench's load running: wall clock, the report's durationMs, verifiedOnChain,
   discrepancies (must be 0); then one run paced at `--duty-cycle` (its wall and rested time);
   where the time goes (scripts/bench/reconcile_phases.py: per-step timers, the event-loop
   stalls a run causes, EXPLAIN ANALYZE of its two big reads on PostgreSQL); `--profile`
   adds one cProfile'd run.
2. Binds while it runs (scripts/bench/reconcile_load.py): a child process binding with
   `--concurrency` tasks throughout; `--cycles` times a `--duration` s window without, then
   one with a second child running reconcile() back to back, paced at `--duty-cycle` as the
   worker is by default (`--nice N`: that child niced).
   Medians of binds/s per window and their ratio (goal ≥ 0.9), with the load average;
   windows after the pool ran dry are shown but left out (size `--pool` for the run).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chains.checks.reconciler import reconcile
from chains.codec import address_parser
from pool.kit.clock import utc_now
from pool.kit.config import ReconcileSettings
from pool.kit.db import Database
from scripts.bench.children import clean_env
from scripts.bench.imports import PSQL
from scripts.bench.reconcile_chain import (
    SECRET_KEY,
    ChainSpec,
    bench_settings,
    prepare_chain,
    recent_deposits,
)
from scripts.bench.reconcile_data import (
    History,
    insert_history,
    mark_delivered,
    seed_endpoint,
    seed_pool,
    table_sizes,
)
from scripts.bench.reconcile_load import bind_impact
from scripts.bench.reconcile_phases import explain_reads, loop_stalls, phase_timers
from scripts.bench.report import save_json
from scripts.bench.watcher import code_version
from scripts.bench.watcher_pool import bind_first, prepare_backend
from scripts.devnet.anvil import Anvil

PG_DATABASE = "addrpool_bench_recon"
LABEL = {"without": "w/o", "with": "with"}


# -- setup ------------------------------------------------------------------------------------


async def build_state(url: str, chain: ChainSpec, args: argparse.Namespace) -> dict[str, Any]:
    """Pool, history and recent deposits in the database; what was built, with timings."""
    settings = bench_settings(url, chain, chain_reads=args.chain_reads)
    db = Database(url, pool_size=5)
    began = time.perf_counter()
    await seed_pool(db, args.pool)
    endpoint_id = await seed_endpoint(db, SECRET_KEY)
    token_text = address_parser("evm")(chain.token).text
    history = History(
        token_text, chain.start_block, chain.confirmations, args.deposits - args.chain_reads
    )
    bindings = await insert_history(db, history, endpoint_id, settings.reconcile.window)
    seeded = time.perf_counter()
    recipients = await bind_first(url, args.chain_reads)
    recent = await recent_deposits(settings, db, chain, recipients, args.per_block)
    completed = await mark_delivered(db)
    sizes = await table_sizes(db)
    await db.dispose()
    return {
        "history_bindings": bindings,
        "seed_seconds": round(seeded - began, 1),
        "recent": asdict(recent),
        "recent_completed": completed,
        "table_rows": sizes,
    }


def analyse(name: str, url: str) -> None:
    """Statistics fresh and nothing left for autovacuum to start mid-measurement."""
    if name == "postgresql":
        subprocess.run([*PSQL, "-d", PG_DATABASE, "-c", "VACUUM ANALYZE"], check=True)
        subprocess.run([*PSQL, "-d", PG_DATABASE, "-c", "CHECKPOINT"], check=True)
        return
    import sqlite3

    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    connection.execute("ANALYZE")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


# -- measurement 1: the run itself ------------------------------------------------------------


async def timed_runs(url: str, chain: ChainSpec, args: argparse.Namespace) -> dict[str, Any]:
    """Flat out (duty cycle 1): what a run costs; then one run paced as `--duty-cycle`."""
    settings = bench_settings(url, chain, chain_reads=args.chain_reads)
    db = Database(url, pool_size=5)
    runs: list[dict[str, Any]] = []
    for _ in range(args.runs):
        async with loop_stalls() as stalls:
            with phase_timers() as phases:
                began = time.perf_counter()
                report = await reconcile(settings, db)
                wall = time.perf_counter() - began
        runs.append(run_summary(report, wall, phases) | stall_summary(stalls))
    profile = await profiled_run(settings, db) if args.profile else None
    began = time.perf_counter()
    paced = await reconcile(settings, db, duty_cycle=args.duty_cycle)
    paced_wall = time.perf_counter() - began
    await db.dispose()
    walls = [r["wall_s"] for r in runs]
    median_run = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return {
        "wall_s_median": statistics.median(walls),
        "runs": runs,
        "phases_of_median_run": median_run["phases"],
        "profile": profile,
        "paced": {
            "duty_cycle": args.duty_cycle,
            "wall_s": round(paced_wall, 2),
            "rested_ms": paced["restedMs"],
            "discrepancies": paced["discrepancies"],
        },
    }


def run_summary(report: dict[str, Any], wall: float, phases: dict[str, float]) -> dict[str, Any]:
    chain = next(iter(report["chains"].values()), {})
    return {
        "wall_s": round(wall, 2),
        "duration_ms": report["durationMs"],
        "deposits_checked": report["depositsChecked"],
        "verified_on_chain": chain.get("verifiedOnChain"),
        "chain_error": chain.get("error"),
        "discrepancies": report["discrepancies"],
        "nonzero_counts": {k: v for k, v in report["counts"].items() if v},
        "phases": {k: round(v, 3) for k, v in phases.items()},
    }


def stall_summary(lateness: Sequence[float]) -> dict[str, float]:
    """The longest wait the run imposed on its event loop, and the time in waits over 0.1 s."""
    return {
        "loop_stall_max_s": round(max(lateness, default=0.0), 3),
        "loop_stalled_over_100ms_s": round(sum(x for x in lateness if x > 0.1), 2),
    }


async def profiled_run(settings: Any, db: Database) -> str:
    """cProfile of one more run: the top functions by cumulative time (CPU in coroutines)."""
    profiler = cProfile.Profile()
    profiler.enable()
    await reconcile(settings, db)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
    out.write("\n-- by own time --\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    return out.getvalue()


# -- a backend, end to end --------------------------------------------------------------------


def run_backend(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    backend_work = work / name
    backend_work.mkdir()
    backend = prepare_backend(name, backend_work, PG_DATABASE)
    with Anvil() as node:
        chain = prepare_chain(
            node.url, history_blocks=args.history_blocks, confirmations=args.confirmations
        )
        print(f"{name}: building {args.deposits:,} deposits", flush=True)
        result: dict[str, Any] = {"setup": asyncio.run(build_state(backend.url, chain, args))}
        analyse(name, backend.url)
        print(f"{name}: {args.runs} timed reconciliation runs", flush=True)
        result["reconcile"] = asyncio.run(timed_runs(backend.url, chain, args))
        if name == "postgresql":
            since = utc_now() - bench_settings(backend.url, chain, chain_reads=1).reconcile.window
            result["explain"] = explain_reads(PSQL, PG_DATABASE, since)
        if args.cycles:
            print(f"{name}: binds, {args.cycles} x {args.duration} s without/with", flush=True)
            result["binds"] = bind_impact(
                load_spec(backend.url, chain, args), work / name, clean_env()
            )
    return result


def load_spec(url: str, chain: ChainSpec, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "database_url": url,
        "chain": chain.to_json(),
        "chain_reads": args.chain_reads,
        "concurrency": args.concurrency,
        "prefix": f"load{os.getpid()}",
        "seconds": args.duration,
        "cycles": args.cycles,
        "warmup": args.warmup,
        "nice": args.nice,
        "duty_cycle": args.duty_cycle,
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "code": code_version(),
        "load_average_start": os.getloadavg(),
        "backends": {},
    }
    try:
        for name in args.backends:
            results["backends"][name] = run_backend(name, args, work)
    finally:
        if "postgresql" in args.backends:
            drop = f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"
            subprocess.run([*PSQL, "-d", "postgres", "-c", drop], check=False)
    results["load_average_end"] = os.getloadavg()
    return results


# -- the report -------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    lines = [f"`{results['command']}` at {results['code']}", ""]
    lines += ["| backend | measure | value |", "|---|---|---|"]
    for name, backend in results["backends"].items():
        lines += [f"| {name} | {label} | {value} |" for label, value in rows(backend)]
    lines.append("")
    for name, backend in results["backends"].items():
        lines += [f"{name}, where a run's time goes (median run, seconds):", ""]
        phases = backend["reconcile"]["phases_of_median_run"]
        lines += [f"    {label:<42} {seconds:8.3f}" for label, seconds in phases.items()]
        lines.append("")
    load = (results["load_average_start"], results["load_average_end"])
    lines.append(f"load average (1, 5, 15 min) start {fmt(load[0])}, end {fmt(load[1])}")
    return "\n".join(lines)


def rows(backend: dict[str, Any]) -> list[tuple[str, str]]:
    setup, timed = backend["setup"], backend["reconcile"]
    first = timed["runs"][0]
    out = [
        ("rows: deposit / event / delivery / address / binding", _sizes(setup["table_rows"])),
        ("reconcile wall s, flat out, median", f"**{timed['wall_s_median']:.2f}**"),
        ("reconcile wall s, each run", ", ".join(f"{r['wall_s']:.2f}" for r in timed["runs"])),
        ("report durationMs, each run", ", ".join(str(r["duration_ms"]) for r in timed["runs"])),
        ("depositsChecked", str(first["deposits_checked"])),
        ("verifiedOnChain", ", ".join(str(r["verified_on_chain"]) for r in timed["runs"])),
        ("discrepancies", ", ".join(str(r["discrepancies"]) for r in timed["runs"])),
        ("longest event-loop stall in a run, s", _each(timed["runs"], "loop_stall_max_s")),
        ("loop time in stalls > 0.1 s, s", _each(timed["runs"], "loop_stalled_over_100ms_s")),
        (f"paced run (duty cycle {timed['paced']['duty_cycle']}): wall s, of which rested",
         f"{timed['paced']['wall_s']:.2f}, {timed['paced']['rested_ms'] / 1000:.2f} "
         f"({timed['paced']['discrepancies']} discrepancies)"),
    ]  # fmt: skip
    binds = backend.get("binds")
    if binds:
        out += [
            ("binds/s without (median)", str(binds["binds_per_s_without"])),
            ("binds/s with reconcile running (median)", str(binds["binds_per_s_with"])),
            ("ratio with / without (goal ≥ 0.9)", f"**{binds['ratio']}**"),
            ("binds/s per window", _windows(binds["windows"])),
            ("reconcile runs in 'with' windows, wall s (CPU s)", _during(binds["windows"])),
            ("bind failures", json.dumps(binds["bind_failures"]) or "{}"),
            ("load average before / after binds", f"{fmt(binds['load_average_start'])} / "
             f"{fmt(binds['load_average_end'])}"),
        ]  # fmt: skip
    return out


def _each(runs: Sequence[dict[str, Any]], key: str) -> str:
    return ", ".join(str(r[key]) for r in runs)


def _sizes(sizes: dict[str, int]) -> str:
    order = ("deposit", "event", "delivery", "address", "binding")
    return " / ".join(f"{sizes[name]:,}" for name in order)


def _windows(windows: Sequence[dict[str, Any]]) -> str:
    return ", ".join(
        f"{LABEL[w['kind']]} {w['binds_per_s']}" + (" (pool dry)" if w["pool_dry"] else "")
        for w in windows
    )


def _during(windows: Sequence[dict[str, Any]]) -> str:
    """Per 'with' window, each run as wall s (its process's CPU s)."""
    spans = [
        zip(w["reconcile_seconds"], w["reconcile_cpu_seconds"], strict=True)
        for w in windows
        if w["kind"] == "with"
    ]
    return "; ".join(", ".join(f"{s:.1f} ({c:.1f})" for s, c in span) for span in spans)


def fmt(load: Sequence[float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--deposits", type=int, default=100_000, help="in the window, in all")
    parser.add_argument(
        "--chain-reads", type=int, default=1_000, help="recent real deposits = chain re-reads"
    )
    parser.add_argument("--pool", type=int, default=400_000, help="addresses imported")
    parser.add_argument("--per-block", type=int, default=2, help="recent transfers a block")
    parser.add_argument("--history-blocks", type=int, default=2_000)
    parser.add_argument("--confirmations", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3, help="timed reconcile runs")
    parser.add_argument("--duration", type=int, default=20, help="seconds per bind window")
    parser.add_argument("--cycles", type=int, default=4, help="without/with pairs; 0 skips")
    parser.add_argument("--warmup", type=float, default=5.0, help="binding before the first window")
    parser.add_argument("--concurrency", type=int, default=16, help="bind tasks")
    parser.add_argument("--nice", type=int, default=0, help="niceness of the reconcile child")
    parser.add_argument(
        "--duty-cycle",
        type=float,
        default=ReconcileSettings().duty_cycle,
        help="the pace of the runs while binds are measured (default: the setting's default)",
    )
    parser.add_argument("--backends", type=lambda t: t.split(","), default=["postgresql"])
    parser.add_argument("--profile", action="store_true", help="one more run under cProfile")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.chain_reads >= args.deposits:
        raise SystemExit("--chain-reads must be below --deposits")
    with tempfile.TemporaryDirectory(prefix="addrpool-bench-reconcile-") as tmp:
        results = run(args, Path(tmp))
    print(report(results))
    for name, backend in results["backends"].items():
        for read, plan in backend.get("explain", {}).items():
            print(f"\n{name}: EXPLAIN ANALYZE of {read}\n{plan}")
    for name, backend in results["backends"].items():
        if backend["reconcile"]["profile"]:
            print(f"\n{name}: cProfile of one run\n{backend['reconcile']['profile']}")
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
