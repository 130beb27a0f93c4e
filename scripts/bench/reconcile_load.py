"""Binds while reconciliation runs: the two child processes and the alternating windows.

    python -m scripts.bench.reconcile_load binds|reconcile SPEC.json   (started by the bench)

- `binds`: `concurrency` tasks, each binding a new reference after the other with
  `allocation.bind` in `run_write(single_statement=True)` — what POST /deposits/bind does,
  without HTTP. Completed binds are counted in BUCKET-second slots of the system-wide
  monotonic clock (comparable across processes) until SIGTERM, then written out.
- `reconcile`: `reconcile()` back to back, as many runs as start within `seconds` of the
  first one; the first start and every run's times are written out.
The parent alternates windows of `seconds` without and with a reconcile child while the bind
child runs throughout; a window's rate counts only the slots wholly inside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import InsufficientAddresses

ROOT = Path(__file__).resolve().parents[2]
BUCKET = 0.25  # seconds per counting slot
READY_DEADLINE = 120.0
SETTLE = 1.0  # seconds between windows: the last run's tail and a child's start stay out


# -- the bind child ---------------------------------------------------------------------------


async def _bind_once(db: Database, reference: str) -> None:
    async def work(conn: Any) -> Any:
        return await allocation.bind(
            conn, reference=reference, protocol="evm", metadata=None, actor="bench",
            now=utc_now(),
        )  # fmt: skip

    await db.run_write(work, single_statement=True)


async def bind_load(spec: dict[str, Any]) -> dict[str, Any]:
    db = Database(spec["database_url"], pool_size=spec["concurrency"])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    counts: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    ready = Path(spec["ready_path"])
    announced: list[None] = []
    dry_at: list[float] = []

    async def binder(task: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                await _bind_once(db, f"{spec['prefix']}-{task}-{n}")
            except InsufficientAddresses:
                failures["pool dry"] += 1
                dry_at.append(time.monotonic())
                stop.set()
                return
            except Exception as exc:  # counted and reported: a failed bind is a result too
                failures[type(exc).__name__] += 1
                continue
            counts[int(time.monotonic() / BUCKET)] += 1
            if not announced:
                announced.append(_signal_ready(ready))

    await asyncio.gather(*(binder(t) for t in range(spec["concurrency"])))
    await db.dispose()
    return {
        "bucket": BUCKET,
        "counts": dict(counts),
        "failures": dict(failures),
        "dry_at": min(dry_at, default=None),
    }


def _signal_ready(path: Path) -> None:
    """Once, after the first bind: a few bytes, no reason to leave the event loop for them."""
    path.write_text("ready")


# -- the reconcile child ----------------------------------------------------------------------


async def reconcile_loop(spec: dict[str, Any]) -> dict[str, Any]:
    from chains.checks.reconciler import reconcile
    from scripts.bench.reconcile_chain import ChainSpec, bench_settings

    chain = ChainSpec(**spec["chain"])
    settings = bench_settings(
        spec["database_url"], chain, chain_reads=spec["chain_reads"], duty_cycle=spec["duty_cycle"]
    )
    db = Database(spec["database_url"], pool_size=5)
    first = time.monotonic()
    runs = []
    while time.monotonic() < first + spec["seconds"]:
        began, cpu = time.monotonic(), time.process_time()
        report = await reconcile(settings, db)
        runs.append(
            {
                "start": began,
                "end": time.monotonic(),
                "cpu_s": time.process_time() - cpu,
                "duration_ms": report["durationMs"],
                "discrepancies": report["discrepancies"],
            }
        )
    await db.dispose()
    return {"first": first, "runs": runs}


# -- the parent's side ------------------------------------------------------------------------


def _child(mode: str, spec: dict[str, Any], work: Path, env: dict[str, str]) -> subprocess.Popen:
    spec_path = work / f"{mode}-spec.json"
    spec_path.write_text(json.dumps(spec))
    log = (work / f"{mode}.log").open("ab")
    argv = [sys.executable, "-m", "scripts.bench.reconcile_load", mode, str(spec_path)]
    if mode == "reconcile" and spec.get("nice"):
        argv = ["nice", "-n", str(spec["nice"]), *argv]  # its own CPU only; not the database's
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)


def _wait_ready(process: subprocess.Popen, ready: Path, work: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"bind child not ready:\n{(work / 'binds.log').read_text()[-3000:]}")
        time.sleep(0.1)


def _reconcile_window(base: dict[str, Any], work: Path, env: dict[str, str], n: int) -> dict:
    spec = {**base, "result_path": str(work / f"reconcile-{n}.json")}
    process = _child("reconcile", spec, work, env)
    if process.wait() != 0:
        raise RuntimeError(
            f"reconcile child failed:\n{(work / 'reconcile.log').read_text()[-3000:]}"
        )
    result: dict[str, Any] = json.loads(Path(spec["result_path"]).read_text())
    return result


def rate(counts: dict[int, int], bucket: float, start: float, end: float) -> float:
    """Binds per second over the slots wholly inside [start, end]."""
    first, last = int(start / bucket) + 1, int(end / bucket) - 1
    slots = max(1, last - first + 1)
    return sum(counts.get(slot, 0) for slot in range(first, last + 1)) / (slots * bucket)


def bind_impact(base: dict[str, Any], work: Path, env: dict[str, str]) -> dict[str, Any]:
    """`cycles` × (a window without, a window with reconciliation), binds counted throughout."""
    seconds = base["seconds"]
    ready = work / "binds.ready"
    binds_spec = {**base, "ready_path": str(ready), "result_path": str(work / "binds.json")}
    binder = _child("binds", binds_spec, work, env)
    windows: list[dict[str, Any]] = []
    load_start = os.getloadavg()
    try:
        _wait_ready(binder, ready, work)
        time.sleep(base["warmup"])
        for n in range(base["cycles"]):
            began = time.monotonic()
            time.sleep(seconds)
            windows.append({"kind": "without", "start": began, "end": time.monotonic()})
            time.sleep(SETTLE)
            ran = _reconcile_window(base, work, env, n)
            end = ran["first"] + seconds
            windows.append({"kind": "with", "start": ran["first"], "end": end, **_runs(ran)})
            time.sleep(SETTLE)
    finally:
        binder.send_signal(signal.SIGTERM)
        binder.wait(timeout=120)
    load_end = os.getloadavg()
    return summarise(json.loads((work / "binds.json").read_text()), windows, load_start, load_end)


def _runs(ran: dict[str, Any]) -> dict[str, Any]:
    runs = ran["runs"]
    return {
        "reconcile_runs": len(runs),
        "reconcile_seconds": [round(r["end"] - r["start"], 2) for r in runs],
        "reconcile_cpu_seconds": [round(r["cpu_s"], 2) for r in runs],
        "discrepancies": sum(r["discrepancies"] for r in runs),
    }


def summarise(
    binds: dict[str, Any],
    windows: list[dict[str, Any]],
    load_start: tuple[float, ...],
    load_end: tuple[float, ...],
) -> dict[str, Any]:
    counts = {int(k): v for k, v in binds["counts"].items()}
    dry_at = binds.get("dry_at") or float("inf")
    for window in windows:
        window["binds_per_s"] = round(rate(counts, binds["bucket"], window["start"], window["end"]))
        window["pool_dry"] = window["end"] > dry_at  # left out: no address left to bind
    without = [w["binds_per_s"] for w in windows if w["kind"] == "without" and not w["pool_dry"]]
    with_ = [w["binds_per_s"] for w in windows if w["kind"] == "with" and not w["pool_dry"]]
    return {
        "binds_per_s_without": _median(without),
        "binds_per_s_with": _median(with_),
        "ratio": round(statistics.median(with_) / statistics.median(without), 3)
        if with_ and without
        else None,
        "windows": [{k: v for k, v in w.items() if k not in ("start", "end")} for w in windows],
        "bind_failures": binds["failures"],
        "total_binds": sum(counts.values()),
        "load_average_start": load_start,
        "load_average_end": load_end,
    }


def _median(values: list[int]) -> float | None:
    return statistics.median(values) if values else None


def main() -> int:
    mode, spec_path = sys.argv[1], Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    result = asyncio.run(bind_load(spec) if mode == "binds" else reconcile_loop(spec))
    Path(spec["result_path"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
