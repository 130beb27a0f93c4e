"""`addrpool orders list|show|cancel`: the API's view of orders, without curl."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from pool.kit.db import Database
from tests.api.test_upstream_answers import front
from tests.fixtures.helpers import auth, load_pool
from tests.fixtures.orders import ORDER_CHAINS, order_body, order_settings
from tests.fixtures.payin import payins_order, refusal, scripted_payin
from tests.fixtures.server import cli, cli_in

ORDERS = "/api/v1/orders"


async def _api(client: httpx.AsyncClient, key: str, path: str) -> object:
    answer = await client.get(f"{ORDERS}{path}", headers=auth(key))
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def _cli_json(database_url: str, *args: str, check: bool = True) -> object:
    return json.loads(cli(*args, "--json", database_url=database_url, check=check).stdout)


@pytest.fixture
async def quiet_client(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The orders app without its pool-low alert task: the CLI runs in this thread and blocks
    the event loop, so on SQLite a task paused inside a write would hold the writer it needs."""
    app = create_app(order_settings(database_url, alerts={"enabled": False}), db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        yield http


async def test_orders_list_show_and_cancel_print_the_apis_view(
    quiet_client: httpx.AsyncClient, db: Database, service_key: str, database_url: str
) -> None:
    orders_client = quiet_client
    await load_pool(db, "evm", 4)
    made = []
    for n in range(3):
        body = order_body(f"shop-{n}", amount=f"{n + 1}.25")
        response = await orders_client.post(ORDERS, json=body, headers=auth(service_key))
        assert response.status_code == 201
        made.append(response.json()["data"])

    everything = _cli_json(database_url, "orders", "list")
    assert everything == await _api(orders_client, service_key, "")
    assert everything["pagination"]["total"] == 3
    paged = _cli_json(database_url, "orders", "list", "--limit", "2", "--page", "2")
    assert paged == await _api(orders_client, service_key, "?limit=2&page=2")
    filtered = _cli_json(
        database_url, "orders", "list", "--status", "pending", "--reference", "shop-1"
    )
    assert [o["orderId"] for o in filtered["orders"]] == [made[1]["orderId"]]
    recent = _cli_json(database_url, "orders", "list", "--created-after", "1h")
    assert recent["pagination"]["total"] == 3

    shown = _cli_json(database_url, "orders", "show", made[0]["orderId"])
    assert shown == await _api(orders_client, service_key, f"/{made[0]['orderId']}")
    assert _cli_json(database_url, "orders", "show", "--reference", "shop-0") == shown

    cancelled = _cli_json(database_url, "orders", "cancel", made[0]["orderId"])
    assert cancelled["status"] == "cancelled"
    assert cancelled == await _api(orders_client, service_key, f"/{made[0]['orderId']}")
    assert _cli_json(database_url, "orders", "list", "--status", "cancelled")["orders"] == [
        cancelled
    ]

    table = cli("orders", "list", database_url=database_url)
    assert table.stdout.splitlines()[0].split() == [
        "id", "reference", "status", "chain", "currency", "amount", "received", "created"
    ]  # fmt: skip
    text = cli("orders", "show", made[1]["orderId"], database_url=database_url).stdout
    assert made[1]["address"] in text and "paymentUrl" in text


async def test_orders_errors_are_one_line(db: Database, database_url: str) -> None:
    missing = cli("orders", "show", "ord_" + "0" * 32, database_url=database_url, check=False)
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [f"error: Order ord_{'0' * 32} not found"]
    as_json = _cli_json(database_url, "orders", "cancel", "ord_" + "1" * 32, check=False)
    assert as_json["code"] == "ORDER_NOT_FOUND"
    neither = cli("orders", "show", database_url=database_url, check=False)
    assert neither.returncode != 0 and len(neither.stderr.strip().splitlines()) == 1
    bad_status = cli("orders", "list", "--status", "paid", database_url=database_url, check=False)
    assert bad_status.returncode == 2 and "pending" in bad_status.stderr


async def test_in_upstream_mode_cancel_goes_to_payin_first(db: Database, database_url: str) -> None:
    """A local cancel alone would leave the order open at PayIn."""
    pool = await load_pool(db, "evm", 1)
    with scripted_payin() as payin:
        overrides = {"chains": ORDER_CHAINS, "alerts": {"enabled": False}}
        async with front(db, database_url, payin.url, "pk_test_upstream", **overrides) as caller:
            answered = payins_order("o1", pool[0])
            payin.answer(201, answered)
            assert (await caller.create_order(order_body("o1"))).status_code == 201
        env = {
            **os.environ,
            "ADDRPOOL_DATABASE_URL": database_url,
            "ADDRPOOL_BINDING_BACKEND": "payin",
            "ADDRPOOL_UPSTREAM_URL": payin.url,
            "ADDRPOOL_UPSTREAM_API_KEY": "pk_test_upstream",
            "ADDRPOOL_UPSTREAM_RETRIES": "0",
        }
        order_id = answered["orderId"]
        payin.status, payin.body = 409, refusal("Conflict", "ORDER_NOT_CANCELLABLE")
        refused = json.loads(cli_in(env, "orders", "cancel", order_id, "--json", expect=2).stdout)
        assert refused["code"] == "ORDER_NOT_CANCELLABLE"
        payin.answer(200, {**answered, "status": "cancelled"})
        done = json.loads(cli_in(env, "orders", "cancel", order_id, "--json").stdout)
    assert done["status"] == "cancelled"
    assert payin.requests[-1] == ("POST", f"/api/v1/orders/{order_id}/cancel", None)
