"""kill -9 of `addrpool serve` on SQLite in the middle of a stream of order creations,
committed together in trips (pool.kit.group_commit): every order answered 201 is in the file,
and the file holds whole orders only — each order with its allocated address and its
`order.created` event, no address twice (invariants 8 and 13, docs/design.md)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from pool.kit.db import Database
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.orders import order_body, order_config_env
from tests.fixtures.server import killed_mid_stream, running_server

pytestmark = [pytest.mark.server, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


async def test_a_killed_server_leaves_every_answered_order_and_no_half_of_one(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    await load_pool(db, "evm", 3_000)
    key = await make_key(db, scopes=None)
    with running_server(database_url, extra_env=order_config_env(tmp_path)) as server:

        async def create(http: httpx.AsyncClient, reference: str) -> httpx.Response:
            return await http.post("/api/v1/orders", json=order_body(reference), headers=auth(key))

        answered = {
            reference: (data["orderId"], data["address"])
            for reference, data in (await killed_mid_stream(server, create)).items()
        }

    with sqlite3.connect(db.url.database) as file:  # what the WAL holds after recovery
        orders = {
            reference: (order_id, text)
            for reference, order_id, text in file.execute(
                "SELECT o.order_reference, o.id, a.address FROM payment_order o"
                " JOIN address a ON a.id = o.address_id AND a.status = 'allocated'"
                " WHERE o.status = 'pending'"
            )
        }
        (all_orders,) = file.execute("SELECT count(*) FROM payment_order").fetchone()
        (allocated,) = file.execute(
            "SELECT count(*) FROM address WHERE status = 'allocated'"
        ).fetchone()
        events = {
            (order_id, text)
            for order_id, text in file.execute(
                "SELECT json_extract(data, '$.orderId'), json_extract(data, '$.address')"
                " FROM event WHERE type = 'order.created'"
            )
        }
    assert all(orders.get(reference) == order for reference, order in answered.items())
    assert len(orders) == all_orders == allocated == len(events)  # whole orders only
    assert set(orders.values()) == events
    assert len({text for _, text in orders.values()}) == len(orders)  # no address twice
