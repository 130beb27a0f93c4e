"""kill -9 of `addrpool serve` on SQLite in the middle of a stream of order creations,
committed together in trips (pool.kit.group_commit): every order answered 201 is in the file,
and the file holds whole orders only — each order with its allocated address and its
`order.created` event, no address twice (invariants 8 and 13, docs/design.md)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from pool.kit.db import Database
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.orders import order_body, order_config_env
from tests.fixtures.server import running_server

pytestmark = [pytest.mark.server, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]
CLIENTS = 32


async def test_a_killed_server_leaves_every_answered_order_and_no_half_of_one(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    await load_pool(db, "evm", 3_000)
    key = await make_key(db, scopes=None)
    answered: dict[str, tuple[str, str]] = {}  # reference → (order id, address), for every 201
    env = order_config_env(tmp_path)
    with running_server(database_url, extra_env=env) as server:
        limits = httpx.Limits(max_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as http:

            async def client(n: int) -> None:
                for i in range(10_000):
                    reference = f"crash_{n}_{i}"
                    try:
                        response = await http.post(
                            "/api/v1/orders", json=order_body(reference), headers=auth(key)
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    assert response.status_code == 201, response.text
                    data = response.json()["data"]
                    answered[reference] = (data["orderId"], data["address"])

            clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
            while len(answered) < 300:  # well into the stream, batches in flight
                await asyncio.sleep(0.01)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=30)
            await asyncio.gather(*clients)

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
