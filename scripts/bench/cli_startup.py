"""How long a short `addrpool` call takes: `--help`, and `keys list` on a migrated SQLite file.

    python -m scripts.bench.cli_startup [--runs 7] [--addrpool ".venv/bin/addrpool"]

`--addrpool "python -m scripts.cli.main"` run from another checkout times that checkout.

Each command runs `--runs` times as its own process; the table gives the median wall time and
its spread (fastest-slowest), and the CPU time (user+system) of the median run, which a busy
shared machine disturbs less than the wall time. It then prints the ten slowest imports of
`scripts.cli.main` and of the `keys` command (`python -X importtime`, cumulative).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.report import markdown, save_json


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv` as a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _measured(argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    _timed(argv, env)  # warm the file cache; not counted
    samples = sorted(_timed(argv, env) for _ in range(runs))
    walls = [wall for wall, _ in samples]
    return {
        "median_s": statistics.median(walls),
        "fastest_s": walls[0],
        "slowest_s": walls[-1],
        "median_run_cpu_s": samples[len(samples) // 2][1],
    }


def _row(name: str, measured: dict[str, float]) -> list[str]:
    return [
        name,
        f"{measured['median_s']:.3f}",
        f"{measured['fastest_s']:.3f}-{measured['slowest_s']:.3f}",
        f"{measured['median_run_cpu_s']:.3f}",
    ]


def _slowest_imports(code: str, env: dict[str, str], count: int = 10) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:  # an older checkout without that module
        return [f"  ({done.stderr.strip().splitlines()[-1]})"]
    timed = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            timed.append((int(parts[1]), parts[2].strip()))
    return [f"  {us / 1000:7.1f} ms  {name}" for us, name in sorted(timed, reverse=True)[:count]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--addrpool",
        default=str(Path(sys.executable).with_name("addrpool")),
        help="the command, split like a shell (default: the one installed beside this Python)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    addrpool = shlex.split(args.addrpool)
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "ADDRPOOL_DATABASE_URL": f"sqlite:///{folder}/bench.db"}
        subprocess.run([*addrpool, "db", "upgrade"], env=env, check=True, capture_output=True)
        measured = {
            "addrpool --help": _measured([*addrpool, "--help"], env, args.runs),
            "addrpool keys list": _measured([*addrpool, "keys", "list"], env, args.runs),
        }
        rows = [_row(name, figures) for name, figures in measured.items()]
        print(markdown(["command", "median s", "spread s", "CPU s (median run)"], rows))
        save_json(args.json, measured)
        print(f"\n{args.runs} runs each; load average {os.getloadavg()[0]:.2f}")
        for code in ("import scripts.cli.main", "import scripts.cli.keys"):
            print(f"\nslowest imports of `{code}` (cumulative):")
            print("\n".join(_slowest_imports(code, env)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
