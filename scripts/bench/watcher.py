"""Watcher benchmark: catch-up beside a bare scan, worker RSS, head latency, per-recipient baseline.

    .venv/bin/python scripts/bench/watcher.py [--addresses 1000000] [--transfers 100000]
        [--blocks 4000] [--backends sqlite,postgresql] [--ranges 500,250,1000,2000,4000]
    smoke run: --addresses 10000 --transfers 2000 --blocks 200

All on this machine, all on loopback:
- Setup (scripts/bench/watcher_chain.py): anvil, automine off while building; test USDT (6
  decimals); `--transfers` Transfer logs over `--blocks` blocks through `batchTransfer`
  (`--per-tx` recipients, one log each, per transaction); `--pool-share` of the logs go to
  `--pool-recipients` pool addresses of which `--bound` are bound (their deposits attributed,
  the others' recorded unattributed), the rest to `--others` random non-pool addresses.
  `--addresses` EVM pool addresses are imported into each backend with `addrpool import`, as
  `scripts/bench/imports.py` does (its functions are reused).
1. Catch-up (a child process, scripts/bench/watcher_child.py): per max_block_range, a fresh
   cursor at the first block and `ChainWatcher.poll()` until caught up — deposits, events and
   confirmations written — beside the bare scan: raw `eth_getLogs` through `RpcClient.call` +
   `transfers_to`, same ranges, same in-memory set. The two alternate; medians of `--repeat`
   runs at the headline (first) range. web3's formatted `eth.get_logs`, for context.
2. A worker's peak RSS: a child that loads the address book and catches up once, its VmHWM
   read just before it exits; each catch-up run above also reports its own peak.
3. Head latency (scripts/bench/watcher_latency.py): `addrpool worker` on the chain (block time
   2 s: polls every 1 s); a block with a transfer to a bound address mined at random moments;
   time from `anvil_mine` returning to the `pending` deposit row existing (polled every 10 ms).
4. Baseline: per-recipient `eth_getLogs` (20 watched addresses in the `to` topic a request, as
   BTCPay's USDt plugin does) over the same blocks, at each `--watched` size.
`--profile DIR` runs the catch-up children under py-spy (collapsed stacks, idle included;
`pip install -e ".[bench]"` brings py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chains.presets import DEFAULT_MAX_BLOCK_RANGE
from scripts.bench.children import clean_env, run_measured
from scripts.bench.imports import PSQL
from scripts.bench.report import finish
from scripts.bench.watcher_chain import (
    ChainFacts,
    build_chain,
    deploy_usdt,
    per_recipient_scan,
    recipients_plan,
    web3_scan,
)
from scripts.bench.watcher_child import ChildSpec, child_main
from scripts.bench.watcher_latency import LatencyPlan, head_latency
from scripts.bench.watcher_pool import Backend, pool_recipients, setup_pool, watched_sets
from scripts.bench.watcher_report import report
from scripts.devnet.anvil import Anvil

ROOT = Path(__file__).resolve().parents[2]
PY_SPY = str(ROOT / ".venv" / "bin" / "py-spy")
GAS_LIMIT = 1_000_000_000  # room for many batchTransfer transactions in one block


# -- children ---------------------------------------------------------------------------------


def run_child(
    mode: str, spec: ChildSpec, work: Path, profile: Path | None = None
) -> dict[str, Any]:
    """Run a measurement in a process of its own; its result (with its own VmHWM).

    Not wait4's ru_maxrss: Linux carries the parent's high-water mark into a child across
    (v)fork + exec, so every child "peaked" at this process's own high-water mark.
    """
    spec_path = work / f"{spec.label}-{mode}.json"
    spec.save(spec_path)
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--spec",
        str(spec_path),
    ]
    if profile is not None and mode == "catchup":
        # Collapsed stacks of every thread, idle ones too: where the wall time goes.
        out = profile / f"{spec.label}-{mode}.txt"
        argv = [
            PY_SPY,
            "record",
            "--idle",
            "--threads",
            "--format",
            "raw",
            "-o",
            str(out),
            "--",
            *argv,
        ]
    log_path = work / f"{spec.label}-{mode}.log"
    return run_measured(
        argv,
        work=work,
        log_path=log_path,
        result_path=Path(spec.result_path),
        what=f"child {mode}",
    )


def child_spec(
    backend: Backend, chain: ChainFacts, args: argparse.Namespace, work: Path, label: str
) -> ChildSpec:
    return ChildSpec(
        database_url=backend.url,
        rpc_url=chain.url,
        token=chain.token,
        start_block=chain.start_block,
        head=chain.head,
        logs=chain.logs,
        pool_logs=chain.pool_logs,
        ranges=args.ranges,
        repeat=args.repeat,
        tune_repeat=args.tune_repeat,
        confirmations=args.confirmations,
        label=label,
        result_path=str(work / f"{label}-result.json"),
    )


# -- the run ----------------------------------------------------------------------------------


def setup_chain(url: str, args: argparse.Namespace, recipients: Sequence[str]) -> ChainFacts:
    token, sender = deploy_usdt(url)
    rng = random.Random(args.seed)  # noqa: S311 - reproducible test data, not secrets
    plan = recipients_plan(
        rng,
        transfers=args.transfers,
        pool_share=args.pool_share,
        pool_recipients=recipients,
        others=args.others,
    )
    print(f"building {args.transfers:,} transfers over {args.blocks:,} blocks", flush=True)
    start, head, seconds = build_chain(
        url, token, sender, plan, blocks=args.blocks, per_tx=args.per_tx, rng=rng
    )
    in_pool = set(recipients)
    return ChainFacts(
        url=url,
        token=token,
        sender=sender,
        start_block=start,
        head=head,
        logs=len(plan),
        pool_logs=sum(1 for r in plan if r in in_pool),
        transactions=-(-len(plan) // args.per_tx),
        build_seconds=round(seconds, 1),
    )


def code_version() -> str:
    """The commit measured, and whether chains/ or pool/ differed from it (shared tree)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "chains", "pool"], capture_output=True, text=True
    )
    return head.stdout.strip() + (" + uncommitted chains/pool changes" if dirty.stdout else "")


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    pg_database = f"bench_watcher_{os.getpid()}"
    results: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "load_average_start": os.getloadavg(),
        "code_start": code_version(),
    }
    try:
        with Anvil(extra_args=["--gas-limit", str(GAS_LIMIT)]) as node:
            backends, pairs = setup_pool(args, work, pg_database)
            recipients = pool_recipients(
                backends[0].bound, pairs, total=args.pool_recipients, bound_count=args.bound
            )
            chain = setup_chain(node.url, args, recipients)
            results["chain"] = asdict(chain)
            results["scans"] = run_scans(chain, recipients, pairs, args)
            for backend in backends:
                print(f"{backend.name}: catch-up and worker children", flush=True)
                spec = child_spec(backend, chain, args, work, f"bench-{backend.name}")
                backend.catchup = run_child("catchup", spec, work, args.profile)
                spec = child_spec(backend, chain, args, work, f"bench-{backend.name}-worker")
                backend.worker = run_child("worker", spec, work)
            for backend in backends:
                print(f"{backend.name}: head latency, {args.samples} samples", flush=True)
                plan = LatencyPlan(
                    backend.name, backend.url, backend.bound, args.confirmations, args.samples,
                    args.seed,
                )  # fmt: skip
                backend.latency = head_latency(plan, chain, clean_env(), work)
            results["backends"] = {b.name: asdict(b) | {"bound": len(b.bound)} for b in backends}
            results["load_average_end"] = os.getloadavg()
            results["code_end"] = code_version()
    finally:
        if "postgresql" in args.backends:
            drop = f"DROP DATABASE IF EXISTS {pg_database} WITH (FORCE)"
            subprocess.run([*PSQL, "-d", "postgres", "-c", drop], check=False)
    return results


def run_scans(
    chain: ChainFacts,
    recipients: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    scans: dict[str, Any] = {}
    default_range = args.ranges[0]
    if not args.skip_web3:
        print("web3 get_logs", flush=True)
        pool_hex20s = {hex20 for _, hex20 in pairs}
        scans["web3"] = asdict(web3_scan(chain, pool_hex20s, block_range=default_range))
    sizes = [min(size, len(pairs)) for size in args.watched]
    for size, watched in watched_sets(recipients, pairs, sizes, skip=args.bound).items():
        print(f"baseline: per-recipient eth_getLogs, {size:,} watched", flush=True)
        result = asyncio.run(
            per_recipient_scan(
                chain, watched, block_range=default_range, concurrency=args.baseline_concurrency
            )
        )
        scans[f"per_recipient_{size}"] = asdict(result)
    return scans


def default_ranges() -> list[int]:
    """The code's own default first (the headline), then others to see which does best."""
    others = [r for r in (250, 1000, 2000, 4000) if r != DEFAULT_MAX_BLOCK_RANGE]
    return [DEFAULT_MAX_BLOCK_RANGE, *others]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ints = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument(
        "--import-files", type=int, default=1,
        help="split the pool into this many files, imported one after another",
    )  # fmt: skip
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--blocks", type=int, default=4_000)
    parser.add_argument("--per-tx", type=int, default=100, help="recipients per batchTransfer")
    parser.add_argument("--pool-share", type=float, default=0.1)
    parser.add_argument("--pool-recipients", type=int, default=1_000)
    parser.add_argument("--bound", type=int, default=800, help="of the pool recipients")
    parser.add_argument(
        "--others", type=int, default=2_000, help="random non-pool recipients to draw from"
    )
    parser.add_argument("--backends", type=lambda t: t.split(","), default=["sqlite", "postgresql"])
    parser.add_argument("--ranges", type=ints, default=default_ranges(),
                        help="max_block_range values; the first is the headline")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="runs at the headline range")
    parser.add_argument("--tune-repeat", type=int, default=1, help="runs at the other ranges")
    parser.add_argument("--confirmations", type=int, default=12)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--watched", type=ints, default=[1_000, 10_000])
    parser.add_argument("--baseline-concurrency", type=int, default=1)
    parser.add_argument("--skip-web3", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profile", type=Path, help="run the catch-up children under py-spy; stacks go here"
    )
    parser.add_argument("--child", choices=["catchup", "worker"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.child:
        return child_main(args.child, args.spec)
    if args.bound > args.pool_recipients:
        raise SystemExit("--bound cannot exceed --pool-recipients")
    with tempfile.TemporaryDirectory(prefix="addrpool-bench-watcher-") as tmp:
        results = run(args, Path(tmp))
    return finish(results, args.json, shown=report(results, args))


if __name__ == "__main__":
    sys.exit(main())
