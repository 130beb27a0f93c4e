"""Several import files: one `addrpool import` per file against one command for them all.

    .venv/bin/python -m scripts.bench.import_files [--files 3] [--rows 1000000] [--rounds 2]
        [--json FILE]

PostgreSQL on this machine, EVM addresses. Each round imports the same `--files` files of
`--rows` random addresses into a fresh database twice: one `addrpool import FILE` after another
(each validates, then writes), and `addrpool import FILE FILE …` (the next file validated while
the one before is written: scripts/cli/imports.py). The two alternate, so a change in the
machine's load touches both; wall times end to end, each command a process of its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.children import clean_env
from scripts.bench.imports import ADDRPOOL, PSQL, fresh_postgres, write_file
from scripts.bench.report import finish

DATABASE = "addrpool_bench_import_files"


def import_command(paths: list[Path], env: dict[str, str]) -> None:
    command = [ADDRPOOL, "import", *map(str, paths), "--protocol", "evm", "--json"]
    subprocess.run(command, env=env, check=True, capture_output=True)


def timed(way: str, paths: list[Path]) -> float:
    env = clean_env(ADDRPOOL_DATABASE_URL=fresh_postgres(DATABASE))
    started = time.perf_counter()
    if way == "one command a file":
        for path in paths:
            import_command([path], env)
    else:
        import_command(paths, env)
    return round(time.perf_counter() - started, 2)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    paths = [work / f"part-{n}.txt" for n in range(args.files)]
    for path in paths:
        write_file(path, "evm", args.rows)
    ways = ("one command a file", "one command for all")
    runs: dict[str, list[float]] = {way: [] for way in ways}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for way in ways:
            runs[way].append(timed(way, paths))
            print(f"{way}: {runs[way][-1]} s", flush=True)
    subprocess.run([*PSQL, "-d", "postgres", "-c", f"DROP DATABASE {DATABASE}"], check=True)
    medians = {way: statistics.median(seconds) for way, seconds in runs.items()}
    return {
        "files": args.files,
        "rows_per_file": args.rows,
        "runs_s": runs,
        "median_s": medians,
        "all_in_one_vs_each": round(medians[ways[1]] / medians[ways[0]], 3),
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="addrpool-bench-") as work:
        return finish(run(args, Path(work)), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
