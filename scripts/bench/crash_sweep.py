"""The long kill -9 sweep of the watcher: more steps than the suite's run, over several seeds.

    .venv/bin/python -m scripts.bench.crash_sweep [--steps 12] [--seeds 20261122,1,2]
        [--backend sqlite|postgresql|both] [--postgres-url postgresql://postgres@127.0.0.1/db]

Runs `tests/chains/watch/test_crash_safety.py` and its twin for the chain's coin,
`test_native_crash_safety.py` (a real anvil, `addrpool worker` processes SIGKILLed at random
points while deposits and reorgs happen) once per seed, with
ADDRPOOL_CRASH_STEPS and ADDRPOOL_CRASH_SEED set: the suite keeps three steps at one seed so that
it stays fast; this is where the many kill points are. The seed decides the chain's changes and
the moments of the kills, so a failing seed is rerun with the same `--seeds`. Prints one line per
seed (passed or failed, seconds) and exits 1 if any failed. Without `--postgres-url` (or
ADDRPOOL_TEST_POSTGRES_URL) only SQLite runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = [
    "tests/chains/watch/test_crash_safety.py",
    "tests/chains/watch/test_native_crash_safety.py",
]


def _run(steps: int, seed: int, backend: str, postgres_url: str) -> tuple[bool, float]:
    env = {
        **os.environ,
        "ADDRPOOL_CRASH_STEPS": str(steps),
        "ADDRPOOL_CRASH_SEED": str(seed),
        "ADDRPOOL_TEST_POSTGRES_URL": postgres_url,
    }
    argv = [sys.executable, "-m", "pytest", *TESTS, "-n", "0", "-q", "-p", "no:cacheprovider"]
    if backend != "both":
        argv += ["-k", backend]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, check=False)
    return done.returncode == 0, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--seeds", default="20261122,1,2")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default=os.environ.get("ADDRPOOL_TEST_POSTGRES_URL", ""))
    args = parser.parse_args(argv)
    if args.steps < 3:
        parser.error("--steps must be at least 3: every third step is the reorg")
    backend = args.backend if args.postgres_url or args.backend != "both" else "sqlite"
    failed = []
    for seed in (int(s) for s in args.seeds.split(",")):
        passed, seconds = _run(args.steps, seed, backend, args.postgres_url)
        outcome = "passed" if passed else "FAILED"
        print(f"seed {seed}: {outcome} ({args.steps} steps, {seconds:.0f} s)")
        if not passed:
            failed.append(seed)
    if failed:
        print(f"failed seeds: {','.join(map(str, failed))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
