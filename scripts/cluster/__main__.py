"""The cluster on this machine (docs/scaling.md).

    python -m scripts.cluster up                  # start it all; Ctrl-C stops it all
    python -m scripts.cluster faults [NAME ...]   # run the fault scenarios, print their figures

Fault names: watcher-kill, worker-kill-webhooks, api-kill, postgres-restart, leader-pause (all
of them, in that order, by default). Each run starts a fresh cluster; `--runs N` repeats them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from scripts.cluster.faults import SCENARIOS
from scripts.cluster.observe import ChainTruth
from scripts.cluster.topology import Cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster and keep it running until Ctrl-C")
    up.add_argument("--dir", type=Path, help="for logs and configuration (default: a temp dir)")
    up.add_argument("--addresses", type=int, default=10_000)
    faults = sub.add_parser("faults", help="run fault scenarios against a fresh cluster")
    # No `choices`: Python 3.11's argparse refuses an empty list against them.
    faults.add_argument("names", nargs="*", metavar="NAME", help=", ".join(SCENARIOS))
    faults.add_argument("--runs", type=int, default=1)
    faults.add_argument("--dir", type=Path, help="keep the logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.command == "faults" and (unknown := set(args.names) - set(SCENARIOS)):
        parser.error(f"no such fault: {', '.join(sorted(unknown))}")
    if args.command == "up":
        return _up(args)
    return _faults(args)


def _up(args: argparse.Namespace) -> int:
    directory = args.dir or Path(tempfile.mkdtemp(prefix="addrpool-cluster-"))
    with Cluster(directory, addresses=args.addresses) as cluster:
        print(f"cluster up; logs and configuration in {directory}")
        print(f"  API (through HAProxy): {cluster.base_url}   key: {cluster.api_key}")
        print(f"  PgBouncer: {cluster.pooled_url}   PostgreSQL: {cluster.direct_url}")
        print(f"  anvil: {cluster.rpc_url}   USDT: {cluster.token}")
        print("Ctrl-C stops everything", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def _faults(args: argparse.Namespace) -> int:
    for run in range(1, args.runs + 1):
        directory = (args.dir / f"run{run}") if args.dir else None
        scratch = tempfile.TemporaryDirectory(prefix="addrpool-cluster-")
        with scratch, Cluster(directory or Path(scratch.name), addresses=20_000) as cluster:
            truth = ChainTruth()
            for name in args.names or list(SCENARIOS):
                figures = SCENARIOS[name](cluster, truth)
                print(json.dumps({"run": run, "scenario": name, **figures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
