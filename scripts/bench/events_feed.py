"""The event feed (`GET /api/v1/events`): how fast a backlog is pulled, and how long a long-polling
reader waits for events written by concurrent transactions — and that it gets each one once.

    .venv/bin/python -m scripts.bench.events_feed --backend sqlite|postgresql \\
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres] [--backlog 100000] \\
        [--writers 4] [--seconds 10]

In one process, through the ASGI app (no network): the figures are the feed's own work and the
database's, not uvicorn's. On a fresh database (PostgreSQL: `addrpool_bench_events`, dropped
and created again on the server of `--postgres-url`):

1. backlog: `--backlog` events written in bulk, then pulled from the start, 1,000 a page;
2. live: `--writers` tasks each write one event per transaction as fast as they can for
   `--seconds`, while one reader long-polls (`wait=5`) from the cursor where the backlog ended.
   Lag = the reader's receipt of an event − its writer's commit returning. Every event must
   arrive exactly once and in `seq` order, whatever order the transactions committed in.

`--naive` (PostgreSQL) reads as SQLite is read, up to the newest visible event, without the
settled horizon (pool/webhooks/feed_horizon.py): what the feed must not do; `missing` counts
the events its reader skipped for good.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url

from api.app import create_app
from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.kit.tables import event
from pool.webhooks.events_repository import insert_events
from pool.webhooks.feed import feed_for
from pool.webhooks.outbox import new_event_id, record_event

EVENTS = "/api/v1/events"
PG_DATABASE = "addrpool_bench_events"


async def fresh_database(backend: str, postgres_url: str, work: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{work / 'feed.db'}"
    server = make_url(postgres_url).set(drivername="postgresql")
    conn = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()
    return server.set(database=PG_DATABASE).render_as_string(hide_password=False)


async def write_backlog(db: Database, count: int) -> None:
    for start in range(0, count, 5000):
        batch = [
            (new_event_id(), "deposit.confirmed", {"n": n, "depositId": f"dep_{n}"})
            for n in range(start, min(count, start + 5000))
        ]
        async with db.write() as conn:
            await insert_events(conn, events=batch, now=utc_now())


async def pull_backlog(http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, float, str]:
    started = time.perf_counter()
    pulled, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"after": cursor} if cursor else {})}
        data = (await http.get(EVENTS, params=params, headers=headers)).json()["data"]
        pulled += len(data["events"])
        cursor = data["nextCursor"]
        if not data["hasMore"]:
            return pulled, time.perf_counter() - started, cursor


async def live(
    db: Database, http: httpx.AsyncClient, headers: dict[str, str], cursor: str, args: Any
) -> dict[str, Any]:
    committed: dict[str, float] = {}
    received: list[tuple[str, float]] = []
    stop = asyncio.Event()

    async def writer(number: int) -> None:
        while not stop.is_set():
            async with db.write() as conn:
                event_id = await record_event(
                    conn, type="order.created", data={"writer": number}, now=utc_now()
                )
            committed[event_id] = time.perf_counter()

    async def reader() -> None:
        """Until the writers have stopped and a 2 s wait brings nothing more (an event the
        reader skipped never comes: it counts as missing)."""
        after = cursor
        while True:
            quiet = stop.is_set()
            params = {"after": after, "wait": 2 if quiet else 5, "limit": 1000}
            data = (await http.get(EVENTS, params=params, headers=headers)).json()["data"]
            now = time.perf_counter()
            received.extend((e["id"], now) for e in data["events"])
            after = data["nextCursor"]
            if quiet and not data["events"]:
                return

    reading = asyncio.create_task(reader())
    writers = [asyncio.create_task(writer(n)) for n in range(args.writers)]
    await asyncio.sleep(args.seconds)
    stop.set()
    await asyncio.gather(*writers)
    await asyncio.wait_for(reading, timeout=60)
    return await _live_report(db, committed, received, args.seconds)


async def _live_report(
    db: Database, committed: dict[str, float], received: list[tuple[str, float]], seconds: float
) -> dict[str, Any]:
    ids = [event_id for event_id, _ in received]
    async with db.read() as conn:
        seq_of = dict((await conn.execute(select(event.c.id, event.c.seq))).all())
    arrival_seqs = [seq_of[i] for i in ids]
    lags = sorted(at - committed[i] for i, at in received if i in committed)
    return {
        "written": len(committed),
        "writesPerSecond": round(len(committed) / seconds),
        "received": len(ids),
        "duplicates": len(ids) - len(set(ids)),
        "missing": len(set(committed) - set(ids)),
        "inSeqOrder": arrival_seqs == sorted(arrival_seqs),
        "lagMs": {
            "p50": round(statistics.median(lags) * 1000, 1),
            "p95": round(lags[int(len(lags) * 0.95)] * 1000, 1),
            "max": round(lags[-1] * 1000, 1),
        },
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="addrpool-feed-") as work:
        url = await fresh_database(args.backend, args.postgres_url, Path(work))
        db = Database(url, pool_size=args.writers + 4)
        await upgrade(db)
        try:
            async with db.write() as conn:
                key, _ = await keys.create_key(
                    conn, name="bench", scopes=["webhooks:read"], key_prefix="pk_test_",
                    actor="bench", now=utc_now(),
                )  # fmt: skip
            settings = Settings(database_url=url)
            app = create_app(settings, db=db)
            if args.naive:
                feed_for(db)._horizon = None  # see the module's docstring
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                await write_backlog(db, args.backlog)
                pulled, took, cursor = await pull_backlog(http, headers)
                report = {
                    "backend": args.backend + (" (naive)" if args.naive else ""),
                    "backlog": {"events": pulled, "seconds": round(took, 2),
                                "eventsPerSecond": round(pulled / took)},
                    "live": await live(db, http, headers, cursor, args),
                }  # fmt: skip
            await app.state.ctx.pool_alerts.close()
        finally:
            await db.dispose()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--naive", action="store_true", help="no settled horizon (comparison)")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))  # noqa: T201
