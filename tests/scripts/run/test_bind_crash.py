"""kill -9 of `addrpool serve` on SQLite in the middle of a stream of binds, committed together
in trips (pool.kit.group_commit): every bind answered 201 is in the file, and the file holds
whole binds only — each binding with its bound address and its event, no address twice
(invariants 1 and 8, docs/design.md)."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from pool.kit.db import Database
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.server import killed_mid_stream, running_server

pytestmark = [pytest.mark.server, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


async def test_a_killed_server_leaves_every_answered_bind_and_no_half_of_one(
    database_url: str, db: Database
) -> None:
    await load_pool(db, "evm", 3_000)
    key = await make_key(db, scopes=None)
    with running_server(database_url) as server:

        async def bind(http: httpx.AsyncClient, reference: str) -> httpx.Response:
            body = {"depositReference": reference, "protocol": "evm"}
            return await http.post("/api/v1/deposits/bind", json=body, headers=auth(key))

        answered = {
            reference: data["address"]
            for reference, data in (await killed_mid_stream(server, bind)).items()
        }

    with sqlite3.connect(db.url.database) as file:  # what the WAL holds after recovery
        bindings = dict(
            file.execute(
                "SELECT b.deposit_reference, a.address FROM binding b"
                " JOIN address a ON a.id = b.address_id AND a.status = 'bound'"
                " AND a.last_reference = b.deposit_reference WHERE b.unbound_at IS NULL"
            ).fetchall()
        )
        (all_bindings,) = file.execute("SELECT count(*) FROM binding").fetchone()
        (bound,) = file.execute("SELECT count(*) FROM address WHERE status = 'bound'").fetchone()
        events = {
            reference
            for (reference,) in file.execute(
                "SELECT json_extract(data, '$.depositReference') FROM event"
                " WHERE type = 'deposit.address_bound'"
            )
        }
    assert all(bindings.get(reference) == address for reference, address in answered.items())
    assert len(bindings) == all_bindings == bound == len(events)  # whole binds only
    assert set(bindings) == events
    assert len(set(bindings.values())) == len(bindings)  # no address twice
