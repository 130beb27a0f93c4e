"""Invariant 1 (docs/design.md) under load, through the real HTTP server, on SQLite and on PostgreSQL."""

from collections import Counter

import pytest
from sqlalchemy import func, select

from pool.kit.db import Database
from pool.kit.tables import address, binding, event
from tests.fixtures.helpers import load_pool, make_key
from tests.fixtures.server import bind_all_at_once, running_server

pytestmark = pytest.mark.server


def _server_shape(backend: str) -> dict:
    # SQLite allows one process; PostgreSQL is exercised with two uvicorn workers. Their pools
    # are kept small (10 + 10 overflow each): the suite's other workers share the server's
    # 100 connections, and a bind refused a connection would be a 500 this test did not cause.
    return (
        {"command": "serve", "workers": 1}
        if backend == "sqlite"
        else {"command": "api", "workers": 2, "extra_env": {"ADDRPOOL_DB_POOL_SIZE": "10"}}
    )


async def _table_counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        active = await conn.scalar(
            select(func.count()).select_from(binding).where(binding.c.unbound_at.is_(None))
        )
        distinct_addresses = await conn.scalar(
            select(func.count(func.distinct(binding.c.address_id))).where(
                binding.c.unbound_at.is_(None)
            )
        )
        bound = await conn.scalar(
            select(func.count()).select_from(address).where(address.c.status == "bound")
        )
        # Binds' own events: a pool this small also raises alert.address_pool_low.
        events = await conn.scalar(
            select(func.count()).select_from(event).where(event.c.type == "deposit.address_bound")
        )
    return {"active": active, "distinct": distinct_addresses, "bound": bound, "events": events}


async def test_racing_binds_never_share_an_address(backend, database_url, db) -> None:
    await load_pool(db, "evm", 260)
    key = await make_key(db, scopes=None)
    distinct = [f"user_{i}" for i in range(200)]
    hot = ["hot_reference"] * 60
    mixed = [r for pair in zip(distinct[:60], hot, strict=True) for r in pair] + distinct[60:]
    with running_server(database_url, **_server_shape(backend)) as server:
        responses = await bind_all_at_once(server.base_url, key, mixed)
        assert server.terminate() == 0
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 201, 200: 59}, statuses
    by_reference: dict[str, set[str]] = {}
    for reference, response in zip(mixed, responses, strict=True):
        by_reference.setdefault(reference, set()).add(response.json()["data"]["address"])
    assert all(len(addresses) == 1 for addresses in by_reference.values())
    handed_out = [next(iter(a)) for a in by_reference.values()]
    assert len(handed_out) == len(set(handed_out)) == 201
    assert await _table_counts(db) == {"active": 201, "distinct": 201, "bound": 201, "events": 201}


async def test_exhausted_pool_under_load_is_503_and_writes_nothing_extra(
    backend, database_url, db
) -> None:
    await load_pool(db, "evm", 50)
    key = await make_key(db, scopes=None)
    references = [f"late_{i}" for i in range(220)]
    with running_server(database_url, **_server_shape(backend)) as server:
        responses = await bind_all_at_once(server.base_url, key, references)
        assert server.terminate() == 0
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 503: 170}, statuses
    assert {r.json()["error"] for r in responses if r.status_code == 503} == {
        "InsufficientAddresses"
    }
    assert await _table_counts(db) == {"active": 50, "distinct": 50, "bound": 50, "events": 50}
