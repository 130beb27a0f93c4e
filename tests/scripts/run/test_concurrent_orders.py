"""Invariant 13 (docs/design.md) under load, through the real HTTP server, on SQLite and on
PostgreSQL: concurrent creations get different addresses, one reference names one order, an
exhausted pool writes nothing, and a bind never takes an allocated address."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from pool.kit.db import Database
from pool.kit.tables import address, binding, event, payment_order
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.orders import order_body, order_config_env
from tests.fixtures.server import bind_all_at_once, running_server

pytestmark = pytest.mark.server


def _server_shape(backend: str, tmp_path: Path) -> dict:
    # As tests/scripts/run/test_concurrent_binds.py: SQLite allows one process; PostgreSQL runs
    # two uvicorn workers with small pools (the suite's other workers share the server).
    env = order_config_env(tmp_path)
    if backend == "sqlite":
        return {"command": "serve", "workers": 1, "extra_env": env}
    return {"command": "api", "workers": 2, "extra_env": {**env, "ADDRPOOL_DB_POOL_SIZE": "10"}}


async def create_all_at_once(base_url: str, key: str, references: list[str]) -> list:
    limits = httpx.Limits(max_connections=len(references))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
        return await asyncio.gather(
            *(
                http.post("/api/v1/orders", json=order_body(r), headers=auth(key))
                for r in references
            )
        )


async def _counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:

        async def count(statement) -> int:
            return int(await conn.scalar(statement) or 0)

        return {
            "orders": await count(select(func.count()).select_from(payment_order)),
            "distinct": await count(select(func.count(func.distinct(payment_order.c.address_id)))),
            "allocated": await count(
                select(func.count()).select_from(address).where(address.c.status == "allocated")
            ),
            "bound": await count(
                select(func.count()).select_from(address).where(address.c.status == "bound")
            ),
            "bindings": await count(select(func.count()).select_from(binding)),
            "events": await count(
                select(func.count()).select_from(event).where(event.c.type == "order.created")
            ),
        }


async def test_racing_creations_get_distinct_addresses_and_one_order_per_reference(
    backend, database_url, db, tmp_path
) -> None:
    await load_pool(db, "evm", 260)
    key = await make_key(db, scopes=None)
    distinct = [f"order_{i}" for i in range(200)]
    hot = ["hot_order"] * 50
    mixed = [r for pair in zip(distinct[:50], hot, strict=True) for r in pair] + distinct[50:]
    with running_server(database_url, **_server_shape(backend, tmp_path)) as server:
        responses = await create_all_at_once(server.base_url, key, mixed)
        assert server.terminate() == 0
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 201, 200: 49}, statuses
    by_reference: dict[str, set[str]] = {}
    for reference, response in zip(mixed, responses, strict=True):
        data = response.json()["data"]
        by_reference.setdefault(reference, set()).add((data["orderId"], data["address"]))
    assert all(len(orders) == 1 for orders in by_reference.values())
    handed_out = [next(iter(o))[1] for o in by_reference.values()]
    assert len(handed_out) == len(set(handed_out)) == 201
    assert await _counts(db) == {
        "orders": 201, "distinct": 201, "allocated": 201, "bound": 0, "bindings": 0,
        "events": 201,
    }  # fmt: skip


async def test_creations_and_binds_racing_on_an_exhausted_pool(
    backend, database_url, db, tmp_path
) -> None:
    """50 addresses, 120 creations and 60 binds at once: every address goes to exactly one of
    them, the rest are 503 and write nothing."""
    await load_pool(db, "evm", 50)
    key = await make_key(db, scopes=None)
    with running_server(database_url, **_server_shape(backend, tmp_path)) as server:
        orders, binds = await asyncio.gather(
            create_all_at_once(server.base_url, key, [f"o{i}" for i in range(120)]),
            bind_all_at_once(server.base_url, key, [f"u{i}" for i in range(60)]),
        )
        assert server.terminate() == 0
    order_statuses = Counter(r.status_code for r in orders)
    bind_statuses = Counter(r.status_code for r in binds)
    assert set(order_statuses) <= {201, 503} and set(bind_statuses) <= {201, 503}
    assert order_statuses[201] + bind_statuses[201] == 50, (order_statuses, bind_statuses)
    assert {r.json()["code"] for r in [*orders, *binds] if r.status_code == 503} == {
        "INSUFFICIENT_ADDRESSES"
    }
    taken = [r.json()["data"]["address"] for r in [*orders, *binds] if r.status_code == 201]
    assert len(set(taken)) == 50
    counts = await _counts(db)
    assert counts["orders"] == counts["allocated"] == counts["events"] == order_statuses[201]
    assert counts["bound"] == counts["bindings"] == bind_statuses[201]
    assert counts["distinct"] == counts["orders"]
