"""Refill benchmark: what one refill from an xpub costs, and how long it holds the writer.

    flock /work/bench.lock .venv/bin/python -m scripts.bench.refill \\
        [--postgres postgresql://postgres@127.0.0.1/addrpool_bench] [--pool 100000] \\
        [--batch 500] [--rounds 10]

A fresh database (a temporary SQLite file, or the PostgreSQL database named, dropped and
created again, and dropped at the end) gets a pool of `--pool` EVM addresses derived from a
test xpub; the key is marked for refill; then `--rounds` refills of `--batch` addresses each,
timing apart the derivation (in a thread, off the writer) and the transaction that claims the
range and imports it (pool.refill.service.import_range: on SQLite, how long binds wait
behind it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from chains.hd import derive_addresses, derive_from_key, parse_extended_public_key
from pool.addresses.imports import AccountKey, import_xpub
from pool.kit.config import RefillSettings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.refill import repository as repo
from pool.refill.service import import_range
from pool.refill.switch import KeyChoice, RefillValues, enable
from scripts.bench.report import finish
from scripts.bench.xpub import XPUB

CHUNK = 50_000


async def _fresh_postgres(url: str) -> None:
    await _as_admin(url, 'DROP DATABASE IF EXISTS "{name}"', 'CREATE DATABASE "{name}"')


async def _drop_postgres(url: str) -> None:
    await _as_admin(url, 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _as_admin(url: str, *statements: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        for statement in statements:
            await conn.execute(statement.format(name=parsed.database))
    finally:
        await conn.close()


async def _pool(db: Database, count: int) -> None:
    account = parse_extended_public_key(XPUB)
    key = AccountKey(account.serialize(), account.fingerprint)
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        derived = derive_addresses(account, protocol="evm", branch=0, start=start, count=size)
        await import_xpub(db, protocol="evm", account=key, derived=derived, actor="bench")


async def _refills(db: Database, *, batch: int, rounds: int) -> dict[str, list[float]]:
    await enable(
        db, choice=KeyChoice("evm", public_key=parse_extended_public_key(XPUB).serialize()),
        branch=0, values=RefillValues(batch_size=batch), settings=RefillSettings(),
        derive=derive_from_key, actor="bench",
    )  # fmt: skip
    derive_ms: list[float] = []
    write_ms: list[float] = []
    for _ in range(rounds):
        async with db.read() as conn:
            (refill,) = await repo.all_refills(conn)
        start = refill.next_index
        began = time.perf_counter()
        derived = await asyncio.to_thread(derive_from_key, refill.key.public_key, "evm", 0,
                                          start, batch)  # fmt: skip
        derive_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        outcome = await import_range(db, refill, derived, start=start, end=start + batch)
        write_ms.append((time.perf_counter() - began) * 1000)
        assert outcome.imported == batch, outcome  # noqa: S101 - a benchmark's own check
    return {"derive_ms": derive_ms, "write_ms": write_ms}


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


async def bench(args: argparse.Namespace) -> dict[str, object]:
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as directory:
        url = args.postgres or f"sqlite:///{Path(directory) / 'bench.db'}"
        if args.postgres:
            await _fresh_postgres(url)
        db = Database(url, pool_size=2)
        try:
            await upgrade(db)
            await _pool(db, args.pool)
            timings = await _refills(db, batch=args.batch, rounds=args.rounds)
        finally:
            await db.dispose()
            if args.postgres:
                await _drop_postgres(url)
    return {
        "backend": "postgresql" if args.postgres else "sqlite",
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "pool": args.pool,
        "batch": args.batch,
        "rounds": args.rounds,
        **{name: _spread(values) for name, values in timings.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres", help="a PostgreSQL URL (its database is dropped first and last)"
    )
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also save the results here")
    args = parser.parse_args()
    return finish(asyncio.run(bench(args)), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
