"""The event loop's CPU time per bind, in process: the bind shortcut on vs off.

    .venv/bin/python -m scripts.bench.bind_event_loop [--binds 3200] [--rounds 6] [--clients 32]
        [--database-url postgresql://…]

Two apps on one SQLite file (or the empty PostgreSQL database given) and one pool, alike but
for `api/bind_shortcut.py` (off: the shortcut route removed, every bind through FastAPI's
route). Binds go straight into the ASGI app as in `scripts/bench/rate_limits.py` (no socket, no
HTTP parsing), `--clients` at a time, rate limits on and out of reach as in
`scripts/bench/bind.py`. The figure is the CPU time of the event loop's thread per bind (the
main thread's: SQLite's writer thread is not in it), which other work on the machine moves far
less than the wall clock; the modes alternate ABBA after a discarded warm-up of each. Printed:
µs per bind per run, each mode's median, and the ratio
within each back-to-back pair.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from api.app import create_app
from api.bind_shortcut import BindShortcut
from pool.kit.config import RateLimitSettings, Settings
from pool.kit.db import Database
from scripts.bench.rate_limits import abba, bind, load, prepare

MODES = ("on", "off")
WARM_UP_BINDS = 1000
# As scripts/bench/bind.py runs the server: the limiter in the path, out of reach.
OUT_OF_REACH = RateLimitSettings(per_second=1_000_000, per_minute=60_000_000)


async def run(app: FastAPI, key: str, prefix: str, binds: int, clients: int) -> float:
    """Microseconds of the event loop's CPU time per bind, `binds` from `clients` callers."""
    each = max(binds // clients, 1)

    async def caller(n: int) -> None:
        for count in range(each):
            status = await bind(app, key, f"{prefix}-{n}-{count}")
            if status not in (200, 201):
                raise SystemExit(f"a bind answered {status} (the pool ran dry?)")

    started = time.thread_time()
    await asyncio.gather(*(caller(n) for n in range(clients)))
    return (time.thread_time() - started) / (each * clients) * 1e6


def without_shortcut(app: FastAPI) -> FastAPI:
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, BindShortcut)]
    return app


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger().setLevel(logging.WARNING)  # as the benchmark's server logs
    work = Path(tempfile.mkdtemp(prefix="addrpool-bench-eventloop-"))
    settings = Settings(
        database_url=args.database_url or f"sqlite:///{work / 'bench.db'}",
        rate_limits=OUT_OF_REACH,
    )
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    key = await prepare(db, args.binds * args.rounds * 2 + WARM_UP_BINDS * 2 + 10_000)
    apps = {"on": create_app(settings, db=db), "off": without_shortcut(create_app(settings, db=db))}
    load_before = load()
    for mode in MODES:
        await run(apps[mode], key, f"warm-{mode}", WARM_UP_BINDS, args.clients)
    runs: list[tuple[str, float]] = []
    for n, mode in enumerate(abba(args.rounds)):
        us = await run(apps[mode], key, f"r{n}", args.binds, args.clients)
        runs.append((mode, us))
        print(f"  run {n} {mode}: {us:.0f} µs per bind", flush=True)
    for app in apps.values():
        await app.state.ctx.pool_alerts.close()
    await db.dispose()
    shutil.rmtree(work, ignore_errors=True)
    per_mode = {mode: [us for m, us in runs if m == mode] for mode in MODES}
    pairs = []
    for first, second in zip(runs[0::2], runs[1::2], strict=True):
        on, off = (first, second) if first[0] == "on" else (second, first)
        pairs.append(round(on[1] / off[1], 3))
    return {
        "us_per_bind_on": round(statistics.median(per_mode["on"])),
        "us_per_bind_off": round(statistics.median(per_mode["off"])),
        "pair_ratios_on_off": pairs,
        "load_before": load_before,
        "load_after": load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binds", type=int, default=3200, help="binds per run (default 3200)")
    parser.add_argument("--rounds", type=int, default=6, help="ABBA pairs (default 6)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent callers (32)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database instead of SQLite")
    result = asyncio.run(measure(parser.parse_args()))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
