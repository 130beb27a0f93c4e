"""Binds during an import: bind latency in `addrpool serve` while `addrpool import` writes a
large file into the same SQLite database, and the import's own duration.

    .venv/bin/python -m scripts.bench.import_binds [--rows 1000000] [--clients 16] [--rate 200]

What it does, all on this machine, on loopback:
1. a fresh SQLite file, migrated, with a pool of `--pool` EVM addresses and an API key;
2. an import file of `--rows` random checksummed EVM addresses (header `address`);
3. `addrpool serve` on that file (log level WARNING, its stderr kept);
4. a steady bind load: `--clients` connections, together `--rate` binds a second on a fixed
   schedule, a new reference each; a bind's latency counts from when it was due, so a stall
   weighs as much as the binds it held up; `--warmup` seconds of it alone;
5. `addrpool import FILE --protocol evm --json` as its own process, timed; the load goes on
   until the import has ended and `--after` seconds more.
Reported: latency (nearest-rank p50, p99, max) and answers other than 201 for binds due
before, during and after the import; the import's wall time; and what the server logged at
ERROR or with a traceback (nothing is the goal). `--repeat N` runs it all N times; `--alone`
times the import by itself (no server, no load); `--idle` beside the server with no binds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from chains.evm.address import to_checksum_address
from scripts.bench.report import percentile

ROOT = Path(__file__).resolve().parents[2]
# The command from this checkout's code (run from its root): a copy of another revision's
# tree with this file in it measures that revision the same way.
ADDRPOOL = [sys.executable, "-m", "scripts.cli.main"]
PORT = 18775


@dataclass(frozen=True, slots=True)
class Sample:
    due: float  # monotonic: when the bind was due to be sent
    seconds: float
    status: int


def write_import_file(path: Path, rows: int) -> None:
    lines = (to_checksum_address(secrets.token_hex(20)) for _ in range(rows))
    path.write_text("address\n" + "\n".join(lines) + "\n")


def addrpool(*args: str, env: dict[str, str]) -> str:
    return subprocess.run(
        [*ADDRPOOL, *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def prepare(work: Path, pool: int) -> tuple[dict[str, str], str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")},
        "ADDRPOOL_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
        "ADDRPOOL_LOG_LEVEL": "WARNING",
    }
    seed = work / "pool.txt"
    seed.write_text("\n".join(f"0x{i + 1:040x}" for i in range(pool)) + "\n")
    addrpool("import", str(seed), "--protocol", "evm", env=env)
    key = json.loads(addrpool("keys", "create", "--name", "bench", "--json", env=env))["key"]
    return env, key


async def wait_until_up(url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url + "/health") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.1)


class Deadline:
    """When the load ends: binds due before it are all sent, however late."""

    def __init__(self) -> None:
        self.at = float("inf")


async def bind_load(
    url: str, key: str, *, clients: int, rate: float, until: Deadline, label: str
) -> list[Sample]:
    samples: list[Sample] = []
    period = clients / rate
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)

    async def client(number: int, http: aiohttp.ClientSession) -> None:
        # Each client's binds are due on a fixed schedule, and a bind's latency is counted from
        # when it was due: a client held up by a slow answer sends its late binds at once, and
        # their wait counts (no coordinated omission: a stall shows in every bind it delayed).
        due = time.monotonic() + period * number / clients
        count = 0
        while due < until.at:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            count += 1
            body = {"depositReference": f"{label}_{number}_{count}", "protocol": "evm"}
            try:
                async with http.post(url + "/api/v1/deposits/bind", json=body) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            samples.append(Sample(due, time.monotonic() - due, status))
            due += period

    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    return samples


def summary(samples: list[Sample]) -> dict[str, float]:
    if not samples:
        return {"binds": 0}
    seconds = [s.seconds for s in samples]
    return {
        "binds": len(samples),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 1),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "not_201": sum(1 for s in samples if s.status != 201),
        "status_503": sum(1 for s in samples if s.status == 503),
    }


def problems_logged(stderr: Path) -> dict[str, int]:
    """Lines the server logged at ERROR or above, and lines carrying a traceback."""
    errors = tracebacks = 0
    for line in stderr.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            tracebacks += "Traceback" in line
            continue
        errors += entry.get("level") in ("error", "critical")
        tracebacks += "exc" in entry
    return {"error_lines": errors, "traceback_lines": tracebacks}


@dataclass(slots=True)
class Import:
    started: float
    ended: float = 0.0
    imported: int = 0
    # When the new batch was first seen in each status (a staged SQLite import shows
    # `importing`, then `committed`, then `done`; one written in one transaction only `done`).
    seen: dict[str, float] = field(default_factory=dict)

    def phases(self) -> dict[str, float]:
        """Seconds from the start to each status first seen, and to the end."""
        marks = {status: round(at - self.started, 1) for status, at in self.seen.items()}
        return {**marks, "ended": round(self.ended - self.started, 1)}


async def watch_batches(database: Path, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Polls the newest import batch's status (read only, as another process would)."""
    while not stop.is_set():
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as peek:
                row = peek.execute("SELECT * FROM import_batch ORDER BY id DESC LIMIT 1")
                names = [d[0] for d in row.description]
                found = row.fetchone()
        except sqlite3.Error:
            found = None
        if found is not None and int(found[names.index("id")]) > 1:  # not the pool-filling one
            status = found[names.index("status")] if "status" in names else "done"
            seen.setdefault(status, time.monotonic())
        await asyncio.sleep(0.1)


async def timed_import(rows: Path, env: dict[str, str], database: Path) -> Import:
    """`addrpool import` as its own process, timed, its batch's statuses watched."""
    run = Import(time.monotonic())
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_batches(database, run.seen, stop))
    importer = await asyncio.create_subprocess_exec(
        *ADDRPOOL, "import", str(rows), "--protocol", "evm", "--json", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await importer.communicate()
    run.ended = time.monotonic()
    stop.set()
    await watcher
    if importer.returncode != 0:
        raise RuntimeError(f"the import failed: {err.decode()[-2000:]}")
    run.imported = int(json.loads(out)["imported"])
    return run


def import_only(name: str, run: Import) -> dict[str, object]:
    """An import timed without binds: by itself, or beside an idle server."""
    return {
        name: round(run.ended - run.started, 2),
        "phases_s": run.phases(),
        "imported": run.imported,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def one_run(args: argparse.Namespace, run: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="addrpool-import-binds-") as tmp:
        work = Path(tmp)
        env, key = prepare(work, args.pool)
        rows = work / "import.txt"
        write_import_file(rows, args.rows)
        database = work / "bench.db"
        if args.alone:
            return import_only("import_alone_s", await timed_import(rows, env, database))
        err = work / "serve.err"
        url = f"http://127.0.0.1:{PORT}"
        with err.open("wb") as stderr:
            server = await asyncio.create_subprocess_exec(
                *ADDRPOOL, "serve", "--port", str(PORT), env=env, cwd=ROOT,
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        try:
            await wait_until_up(url, server)
            if args.idle:
                idle = import_only("import_idle_server_s", await timed_import(rows, env, database))
                return {**idle, "server_log": problems_logged(err)}
            until = Deadline()
            load = asyncio.create_task(
                bind_load(
                    url, key, clients=args.clients, rate=args.rate, until=until, label=f"r{run}"
                )
            )
            await asyncio.sleep(args.warmup)
            run = await timed_import(rows, env, database)
            started, ended = run.started, run.ended
            until.at = ended + args.after
            samples = await load
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), timeout=60)
        if args.samples is not None:  # seconds since the import began, latency, status
            lines = [f"{s.due - started:.3f},{s.seconds:.4f},{s.status}" for s in samples]
            args.samples.write_text("due_s,latency_s,status\n" + "\n".join(lines) + "\n")
        return {
            "import_s": round(ended - started, 2),
            "phases_s": run.phases(),
            "imported": run.imported,
            "before": summary([s for s in samples if s.due < started]),
            "during": summary([s for s in samples if started <= s.due < ended]),
            "after": summary([s for s in samples if s.due >= ended]),
            "server_log": problems_logged(err),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="addresses in the import")
    parser.add_argument("--pool", type=int, default=50_000, help="addresses already pooled")
    parser.add_argument("--clients", type=int, default=16, help="concurrent bind clients")
    parser.add_argument("--rate", type=float, default=25.0, help="binds a second, together")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load first")
    parser.add_argument("--after", type=float, default=3.0, help="seconds of load after")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--samples", type=Path, help="write every bind's timing here (CSV)")
    parser.add_argument(
        "--alone", action="store_true", help="time the import only: no server, no binds"
    )
    parser.add_argument(
        "--idle", action="store_true", help="time the import beside the server, no binds"
    )
    args = parser.parse_args()
    results = []
    for run in range(args.repeat):
        result = asyncio.run(one_run(args, run))
        print(json.dumps(result), flush=True)
        results.append(result)
    print(json.dumps({"rows": args.rows, "clients": args.clients, "rate": args.rate,
                      "runs": results}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
