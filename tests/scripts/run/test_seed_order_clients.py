"""PayIn's own clients, unchanged but for their base URL and key, against a real `addrpool serve`
watching anvil: the Python client's create_order/get_order, the TypeScript client (compiled with
tsc --strict) for createOrder/getOrder/bindAddress, and the guide's webhook receiver verifying the
`order.completed` a payment brings."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pool.kit.db import Database
from scripts.devnet import anvil
from tests.fixtures.clients.typescript import compile_client_once, drive_client
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.order_rows import chain_now, stamp_next_block
from tests.fixtures.orders import devnet_serve_env
from tests.fixtures.polling import wait_until
from tests.fixtures.receivers.node import seed_receiver
from tests.fixtures.server import running_server
from tests.scripts.run.test_seed_client import PayInClient

pytestmark = pytest.mark.server

USDT = 10**6  # the devnet token has 6 decimals


async def test_the_guides_python_client_orders_and_its_receiver_verifies_the_completion(
    database_url: str, db: Database, devnet: Devnet, tmp_path: Path, no_proxy_env: None
) -> None:
    await load_pool(db, "evm", 3)
    key = await make_key(db, scopes=None)  # the default scopes: a PayIn client's key
    operator = await make_key(db, scopes=["admin"])
    with running_server(database_url, extra_env=devnet_serve_env(tmp_path, devnet)) as server:
        api = f"{server.base_url}/api/v1"
        hooks = httpx.Client(base_url=api, headers=auth(operator))
        endpoint = hooks.post(
            "/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/later", "events": ["order.completed"]},
        ).json()["data"]
        with seed_receiver(endpoint["secret"]) as receiver:
            hooks.patch(f"/webhooks/endpoints/{endpoint['id']}", json={"url": receiver.url})
            payin = PayInClient(api_key=key, base_url=api)
            order = payin.create_order("order_py_1", "25.5", "USDT", "devnet")
            assert order["status"] == "pending" and order["paymentUrl"].endswith(order["orderId"])
            assert payin.get_order(order["orderId"])["address"] == order["address"]

            # The shared devnet's clock may lag ours after other tests' snapshots: a payment
            # counts from the order's creation second by block time.
            created = datetime.fromisoformat(order["createdAt"])
            if chain_now(devnet.url) <= created:
                stamp_next_block(devnet.url, created + timedelta(seconds=1))
            tx_hash = anvil.transfer(devnet.url, devnet.usdt, order["address"], 25_500_000)
            wait_until(
                lambda: payin.get_order(order["orderId"])["status"] == "completed",
                timeout=30,
                what="the order completed",
            )
            completed = payin.get_order(order["orderId"])
            assert completed["txHash"] == tx_hash and completed["confirmedReceived"] == "25.5"

            def delivered() -> list[dict[str, object]]:
                query = {"eventType": "order.completed", "status": "succeeded"}
                return list(
                    hooks.get("/webhooks/deliveries", params=query).json()["data"]["deliveries"]
                )

            wait_until(lambda: delivered(), timeout=30, what="order.completed delivered")
            # The guide's receiver answers 200 only to a body whose signature it verified.
            assert [d["lastStatusCode"] for d in delivered()] == [200]
        assert server.terminate() == 0


@pytest.fixture(scope="session")
def typescript_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client and its driver compiled with tsc --strict, once for the run: the run's
    temporary directory is shared by its xdist workers (each has a folder in it)."""
    base = tmp_path_factory.getbasetemp()
    return compile_client_once(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


async def test_the_guides_typescript_client_creates_gets_binds_and_makes_a_payment_link(
    database_url: str,
    db: Database,
    devnet: Devnet,
    tmp_path: Path,
    no_proxy_env: None,
    typescript_client: Path,
) -> None:
    script = typescript_client
    await load_pool(db, "evm", 3)
    key = await make_key(db, scopes=None)
    with running_server(database_url, extra_env=devnet_serve_env(tmp_path, devnet)) as server:
        calls = drive_client(
            script,
            base_url=f"{server.base_url}/api/v1",
            api_key=key,
            reference="order_ts_1",
            chain="devnet",
            currency="USDT",
        )
        link = calls[-1]["result"]
        assert link["success"] is True, link
        # The guide then mails `{origin}/checkout/{slug}`: once published, that is the checkout.
        checkout = f"{server.base_url}/checkout/{link['data']['slug']}"
        assert link["data"]["checkoutUrl"] == checkout
        publish = f"{server.base_url}/api/v1/payment-links/{link['data']['id']}/publish"
        assert httpx.post(publish, headers=auth(key)).status_code == 200
        page = httpx.get(checkout)
        assert page.status_code == 200 and "Web Design Services" in page.text
        assert server.terminate() == 0
    created, fetched, bound, unknown, _ = calls
    order = created["result"]
    assert created["paymentUrl"] == order["paymentUrl"]
    assert (order["orderReference"], order["amount"], order["status"]) == (
        "order_ts_1",
        "100",
        "pending",
    )
    assert fetched["result"]["orderId"] == order["orderId"]
    assert fetched["result"]["address"] == order["address"]
    assert bound["result"]["depositReference"] == "user_order_ts_1"
    assert bound["result"]["address"] != order["address"]  # an allocated address is never bound
    # The client throws `data.message` on an error answer.
    assert "not found" in unknown["error"].lower()
