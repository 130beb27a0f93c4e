"""A long schemathesis run over every API operation: no input may get a 5xx.

    .venv/bin/python scripts/bench/fuzz_api.py --cases 20000 --backend sqlite|postgresql [--seed 0]

Starts `addrpool api` on a fresh database (a SQLite file in a temporary folder, or the
PostgreSQL database `fuzz_api_<pid>`, created here and dropped at the end; both migrated with
`pool.kit.migrate`), with an admin key and `--pool` addresses per protocol, then sends `--cases`
generated requests through `scripts/bench/fuzz.py` (every operation of the server's OpenAPI
document, schema-valid and schema-violating, seeded). Prints a JSON summary (cases,
operations, status codes, 5xx count, duration) and every offending request as a curl command;
exits 1 if any response was a 5xx or an error without the envelope.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from pool.kit.db import Database
from pool.kit.migrate import upgrade
from scripts.bench.fuzz import curl_lines, fuzz, prepare

ROOT = Path(__file__).resolve().parents[2]
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pool", type=int, default=0, help="addresses per protocol; default --cases"
    )
    args = parser.parse_args()
    with fresh_database(args.backend) as database_url:
        key = asyncio.run(prepare(database_url, pool_size=args.pool or args.cases))
        with serving(database_url) as base_url:
            report = fuzz(base_url, key, cases=args.cases, seed_value=args.seed)
    summary = {"backend": args.backend, "seed": args.seed, **report.summary()}
    print(json.dumps(summary, indent=2))
    for line in curl_lines(report.findings):
        print("FINDING:", line)
    return 1 if report.findings else 0


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="fuzz_api_") as folder:
            url = f"sqlite:///{folder}/addrpool.db"
            asyncio.run(_migrate(url))
            yield url
        return
    name = f"fuzz_api_{os.getpid()}"
    subprocess.run([*PSQL, "-d", "postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        asyncio.run(_migrate(url))
        yield url
    finally:
        drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        subprocess.run([*PSQL, "-d", "postgres", "-c", drop], check=False)


async def _migrate(url: str) -> None:
    db = Database(url, pool_size=1)
    await upgrade(db)
    await db.dispose()


@contextmanager
def serving(database_url: str) -> Iterator[str]:
    """`addrpool api` on a free loopback port; its log goes to a file, printed if it dies."""
    port = _free_port()
    env = {
        **os.environ,
        "ADDRPOOL_DATABASE_URL": database_url,
        "ADDRPOOL_SECRET_KEY": secrets.token_hex(16),
        "ADDRPOOL_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "scripts.cli.main", "api", "--port", str(port)]
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(base_url, process, log)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=60)


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log: IO[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"addrpool api exited:\n{log.read()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("addrpool api did not become healthy in time")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
