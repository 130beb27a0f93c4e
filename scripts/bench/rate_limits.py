"""What rate limits cost a bind: the ASGI app in this process, limits on vs off.

    .venv/bin/python -m scripts.bench.rate_limits [--seconds 1] [--rounds 30] [--clients 32] [--aa]

Two apps on one SQLite file and one pool, built alike but for `[rate_limits] enabled`; the
limits on count as the defaults do but are out of reach (the default 2,000 a second per key is
within reach of in-process binds: the run fails if a bind is refused).
Each round binds for `--seconds` with `--clients` concurrent callers (a new reference per
request) straight into the ASGI app — no socket, no HTTP parsing — so the limiter's share of a
bind is larger here than behind uvicorn: an upper bound on its cost. The modes alternate ABBA
after a discarded warm-up of each. Printed: binds/s per run, the medians' ratio (on/off), the
ratio within each back-to-back pair and their spread, the same for the process's CPU time per
bind (steadier: other work on the machine steals wall time, not this process's CPU time), and the
load average before and after.
The machine is shared: other work moves the figures by more than the limiter does; read the
pair ratios' spread before the median, and `--aa` (limits off in both apps) shows the spread
the machine alone makes. The steadier figure comes last: the microseconds the limiter adds to
one request (`spend` plus the header middleware), as a share of one bind's time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from api.app import create_app
from api.rate_limits import DECISION, RateLimiter, RateLimitHeaders
from chains.codec import address_parser
from chains.evm.address import to_checksum_address
from pool.addresses.import_formats import RawRow
from pool.addresses.importer import ImportSource, import_addresses
from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.config import RateLimitSettings, Settings
from pool.kit.db import Database
from pool.kit.migrate import upgrade

BIND_PATH = "/api/v1/deposits/bind"
MODES = ("on", "off")
WARM_UP_SECONDS = 1.0
OUT_OF_REACH_PER_SECOND = 1_000_000


async def prepare(db: Database, addresses: int) -> str:
    """Migrated, `addresses` EVM addresses imported; a key with the bind scope."""
    await upgrade(db)
    rows = [RawRow(n, to_checksum_address(secrets.token_hex(20))) for n in range(addresses)]
    async with db.write() as conn:
        await import_addresses(
            conn,
            protocol="evm",
            rows=rows,
            parser=address_parser("evm"),
            source=ImportSource("bench", "bench"),
            now=utc_now(),
        )
        key, _ = await keys.create_key(
            conn, name="bench", scopes=None, key_prefix="pk_test_", actor="bench", now=utc_now()
        )
    return key


async def bind(app: FastAPI, key: str, reference: str) -> int:
    """One POST straight into the ASGI app; its status."""
    body = json.dumps({"depositReference": reference, "protocol": "evm"}).encode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": BIND_PATH,
        "raw_path": BIND_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a client that never disconnects
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(app: FastAPI, key: str, prefix: str, seconds: float, clients: int) -> dict[str, Any]:
    """Binds for `seconds` from `clients` callers; binds/s and statuses other than 200/201."""
    deadline = time.perf_counter() + seconds
    done = 0
    failures: dict[int, int] = {}

    async def caller(n: int) -> None:
        nonlocal done
        count = 0
        while time.perf_counter() < deadline:
            status = await bind(app, key, f"{prefix}-{n}-{count}")
            count += 1
            if status in (200, 201):
                done += 1
            else:
                failures[status] = failures.get(status, 0) + 1

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller(n) for n in range(clients)))
    # CPU time of this process (its SQLite threads included) per bind: what other work on the
    # machine moves far less than the wall clock's binds/s.
    cpu_us = (time.process_time() - cpu_started) / max(done, 1) * 1e6
    return {"rps": done / (time.perf_counter() - started), "cpu_us": cpu_us, "failures": failures}


async def per_request_cost(calls: int = 200_000) -> dict[str, float]:
    """Microseconds the limits add to one request, apart from everything else: `spend` (the
    counting `require` does) and the header middleware around a do-nothing app. Steadier than
    the throughput ratio: a busy machine slows both modes of a loop alike."""
    limiter = RateLimiter(RateLimitSettings())
    started = time.perf_counter()
    for n in range(calls):
        limiter.spend(n % 100, "deposits:write")
    spend_us = (time.perf_counter() - started) / calls * 1e6

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(_message: Any) -> None:
        return None

    async def receive() -> Any:  # pragma: no cover - the app reads nothing
        return {}

    wrapped = RateLimitHeaders(app)
    decision = limiter.spend(0, "deposits:write")
    timings = {}
    for name, target in (("bare", app), ("wrapped", wrapped)):
        started = time.perf_counter()
        for _ in range(calls):
            await target({"type": "http", DECISION: decision}, receive, send)
        timings[name] = (time.perf_counter() - started) / calls * 1e6
    middleware_us = timings["wrapped"] - timings["bare"]
    return {"spend_us": round(spend_us, 2), "headers_us": round(middleware_us, 2)}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def abba(rounds: int) -> list[str]:
    order: list[str] = []
    for n in range(rounds):
        order += list(MODES) if n % 2 == 0 else list(reversed(MODES))
    return order


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="addrpool-bench-ratelimits-"))
    settings = Settings(database_url=f"sqlite:///{work / 'bench.db'}", metrics_enabled=False)
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    # More than any run binds: in-process SQLite binds reach ~6,000/s since the bind shortcut.
    budget = int(args.rounds * 2 * args.seconds * 10_000 + 20_000)
    key = await prepare(db, min(budget, args.addresses))
    apps = {
        mode: create_app(
            settings.model_copy(
                update={
                    "rate_limits": RateLimitSettings(
                        enabled=mode == "on" and not args.aa,
                        per_second=OUT_OF_REACH_PER_SECOND,
                        per_minute=OUT_OF_REACH_PER_SECOND * 60,
                    )
                }
            ),
            db=db,
        )
        for mode in MODES
    }
    load_before = load()
    for mode in MODES:
        await run(apps[mode], key, f"warm-{mode}", WARM_UP_SECONDS, args.clients)
    runs = []
    for n, mode in enumerate(abba(args.rounds)):
        result = await run(apps[mode], key, f"r{n}", args.seconds, args.clients)
        runs.append(result | {"mode": mode})
        print(
            f"  run {n} {mode}: {result['rps']:.0f} binds/s {result['failures'] or ''}", flush=True
        )
    for app in apps.values():
        await app.state.ctx.pool_alerts.close()
    await db.dispose()
    result = summarise(runs) | {"load_before": load_before, "load_after": load()}
    cost = await per_request_cost()
    shutil.rmtree(work, ignore_errors=True)
    # What the limiter adds to the CPU time one bind costs, limits off.
    share = (cost["spend_us"] + cost["headers_us"]) / result["cpu_us_per_bind_off"]
    return result | cost | {"limiter_share_of_a_bind": round(share, 5)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    refused = [r["failures"] for r in runs if r["failures"]]
    if refused:
        raise SystemExit(f"some binds failed (a limit was met, or the pool ran dry): {refused}")
    rps = {mode: [r["rps"] for r in runs if r["mode"] == mode] for mode in MODES}
    pairs = pair_ratios(runs, "rps")
    cpu = {mode: [r["cpu_us"] for r in runs if r["mode"] == mode] for mode in MODES}
    return {
        "cpu_us_per_bind_on": round(statistics.median(cpu["on"])),
        "cpu_us_per_bind_off": round(statistics.median(cpu["off"])),
        "cpu_ratio_on_off": round(statistics.median(cpu["on"]) / statistics.median(cpu["off"]), 3),
        "cpu_pair_ratios_spread": spread(pair_ratios(runs, "cpu_us")),
        "rps_on": [round(x) for x in rps["on"]],
        "rps_off": [round(x) for x in rps["off"]],
        "ratio_of_medians": round(statistics.median(rps["on"]) / statistics.median(rps["off"]), 3),
        "rps_pair_ratios_spread": spread(pairs),
    }


def pair_ratios(runs: list[dict[str, Any]], figure: str) -> list[float]:
    """on / off within each back-to-back pair of the ABBA order."""
    ratios = []
    for first, second in zip(runs[0::2], runs[1::2], strict=True):
        on, off = (first, second) if first["mode"] == "on" else (second, first)
        ratios.append(round(on[figure] / off[figure], 3))
    return ratios


def spread(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    quartile = len(ordered) // 4
    return {
        "median": statistics.median(ordered),
        "middle_half": [ordered[quartile], ordered[-1 - quartile]],
        "all": [ordered[0], ordered[-1]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per run (default 1)")
    parser.add_argument("--rounds", type=int, default=30, help="ABBA pairs (default 30)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent callers (32)")
    parser.add_argument(
        "--addresses", type=int, default=400_000, help="pool size at most (default 400000)"
    )
    parser.add_argument(
        "--aa",
        action="store_true",
        help="limits off in both apps: the spread the machine alone makes",
    )
    result = asyncio.run(measure(parser.parse_args()))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
