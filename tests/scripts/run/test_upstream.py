"""Upstream mode against a real PayIn-protocol peer: a second addrpool, in local mode, serving
PayIn's API (binds and orders) and sending PayIn webhooks — both watching the same anvil."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.devnet import anvil
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import random_addresses
from tests.fixtures.order_rows import mine_past
from tests.fixtures.polling import wait_until
from tests.fixtures.server import Server, cli_in, free_port, running_server

pytestmark = pytest.mark.server
USDT = 1_000_000
CONFIRMATIONS = 2


@dataclass
class Instance:
    name: str
    env: dict[str, str]
    database_url: str

    def cli(self, *args: str, expect: int = 0) -> Any:
        return json.loads(cli_in(self.env, *args, "--json", expect=expect).stdout)


def instance(tmp_path: Path, name: str, devnet: Devnet, start: int, **settings: str) -> Instance:
    chain = (
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\npoll_interval = 0.2\n'
        f"confirmations = {CONFIRMATIONS}\nstart_block = {start}\n"
        f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
    )
    config = tmp_path / f"{name}.toml"
    config.write_text(chain)
    database_url = f"sqlite:///{tmp_path / name}.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    env |= {
        "ADDRPOOL_CONFIG": str(config),
        "ADDRPOOL_DATABASE_URL": database_url,
        "ADDRPOOL_WEBHOOK_ALLOW_PRIVATE": "true",
        **settings,
    }
    return Instance(name, env, database_url)


def import_addresses(node: Instance, tmp_path: Path, addresses: list[str]) -> None:
    listing = tmp_path / f"{node.name}-addresses.txt"
    listing.write_text("\n".join(addresses) + "\n")
    node.cli("import", str(listing), "--protocol", "evm")


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    if timestamp is None:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


@pytest.fixture
def pair(tmp_path: Path, devnet: Devnet, request: pytest.FixtureRequest) -> Iterator[Any]:
    """PayIn (an addrpool in local mode) and the front (payin mode) in front of it; the front's
    ADDRPOOL_UPSTREAM_URL is PayIn's host root plus the test's parameter, if any."""
    base_path = getattr(request, "param", "")
    start = anvil.block_number(devnet.url)
    *shared, only_upstream = random_addresses("evm", 4)
    upstream = instance(tmp_path, "payin", devnet, start)
    import_addresses(upstream, tmp_path, [*shared, only_upstream])  # handed out in this order
    front_key = upstream.cli("keys", "create", "--name", "front", "--scopes", "admin")["key"]
    front_port = free_port()
    hook = upstream.cli(
        "webhooks",
        "create",
        "--url",
        f"http://127.0.0.1:{front_port}/webhooks/payin",
        "--events",
        "deposit.pending,deposit.confirmed,order.completed,order.expired,order.cancelled",
    )
    with running_server(upstream.database_url, extra_env=upstream.env) as payin:
        front = instance(
            tmp_path,
            "front",
            devnet,
            start,
            ADDRPOOL_BINDING_BACKEND="payin",
            ADDRPOOL_UPSTREAM_URL=payin.base_url + base_path,
            ADDRPOOL_UPSTREAM_API_KEY=front_key,
            ADDRPOOL_UPSTREAM_WEBHOOK_SECRET=hook["secret"],
            ADDRPOOL_UPSTREAM_GRACE="3600",
        )
        import_addresses(front, tmp_path, shared)  # the front does not hold the fourth
        key = front.cli("keys", "create", "--name", "service", "--scopes", "admin")["key"]
        with running_server(front.database_url, port=front_port, extra_env=front.env) as served:

            @dataclass
            class Pair:
                payin_server: Server
                payin_node: Instance
                front_server: Server
                front_node: Instance
                headers: dict[str, str]
                secret: str
                addresses: list[str]

            yield Pair(
                payin,
                upstream,
                served,
                front,
                {"Authorization": f"Bearer {key}"},
                hook["secret"],
                shared,
            )


def bind(pair: Any, reference: str) -> httpx.Response:
    body = {"depositReference": reference, "protocol": "evm"}
    return httpx.post(
        pair.front_server.base_url + "/api/v1/deposits/bind", json=body, headers=pair.headers
    )


def unbind(pair: Any, reference: str) -> httpx.Response:
    body = {"depositReference": reference}
    return httpx.post(
        pair.front_server.base_url + "/api/v1/deposits/unbind", json=body, headers=pair.headers
    )


def front_get(pair: Any, path: str) -> Any:
    answer = httpx.get(pair.front_server.base_url + path, headers=pair.headers)
    return answer.json()


def test_upstream_mode_end_to_end(pair: Any, devnet: Devnet) -> None:
    first = bind(pair, "user-1")
    assert first.status_code == 201, first.text
    address = first.json()["data"]["address"]
    assert address == pair.addresses[0]
    again = bind(pair, "user-1")
    assert (again.status_code, again.json()["data"]["address"]) == (200, address)
    summary = front_get(pair, "/api/v1/address-pool/summary")["data"]["evm"]
    assert (summary["bound"], summary["available"]) == (1, 2)  # recorded as a local bind
    assert bind(pair, "user-2").status_code == 201
    assert bind(pair, "user-3").status_code == 201

    # The upstream's next address is one the front never imported: refused, alerted.
    refused = bind(pair, "user-4")
    assert refused.status_code == 502
    assert refused.json()["code"] == "UPSTREAM_ADDRESS_UNKNOWN"
    alerts = front_get(pair, "/api/v1/alerts?state=firing")["data"]["alerts"]
    assert ("upstream_address_unknown", "critical") in {(a["kind"], a["severity"]) for a in alerts}
    assert front_get(pair, "/api/v1/address-pool/summary")["data"]["evm"]["bound"] == 3

    # A deposit: the upstream announces it, the front saw it too — matched.
    anvil.transfer(devnet.url, devnet.usdt, address, 7 * USDT)
    anvil.mine(devnet.url, CONFIRMATIONS)
    check = pair.front_node
    wait_until(lambda: _upstream_events(check, "matched") >= 2)  # pending and confirmed

    _forged_webhooks_are_rejected_or_reported(pair)

    unbound = unbind(pair, "user-2")
    assert unbound.status_code == 200, unbound.text
    assert front_get(pair, "/api/v1/address-pool/summary")["data"]["evm"]["bound"] == 2

    # The upstream goes away: a clear 503, nothing half-recorded.
    assert pair.payin_server.terminate() == 0
    down = bind(pair, "user-5")
    assert down.status_code == 503
    assert down.json()["code"] == "UPSTREAM_UNAVAILABLE"
    assert front_get(pair, "/api/v1/address-pool/summary")["data"]["evm"]["bound"] == 2


@pytest.mark.parametrize("pair", ["/api/v1"], indirect=True)
def test_payins_documented_base_url_with_its_version_works(pair: Any) -> None:
    """Operators copy PayIn's base URL as documented (`https://testnet.payin.com/api/v1`)."""
    bound = bind(pair, "documented")
    assert bound.status_code == 201, bound.text
    address = bound.json()["data"]["address"]
    assert address == pair.addresses[0]
    shown = front_get(pair, "/api/v1/deposits/references/documented")
    assert shown["data"]["address"] == address  # PayIn's own answer, through the same base
    unbound = unbind(pair, "documented")
    assert unbound.status_code == 200, unbound.text


def _forged_webhooks_are_rejected_or_reported(pair: Any) -> None:
    url = pair.front_server.base_url + "/webhooks/payin"
    event = {
        "id": "evt_forged",
        "type": "deposit.confirmed",
        "createdAt": "2026-11-22T00:00:00.000Z",
        "data": {
            "chainId": "devnet",
            "txHash": "0x" + "ab" * 32,
            "address": pair.addresses[0],
            "amount": "1000",
            "currency": "USDT",
        },
    }
    body = json.dumps(event).encode()
    bad = httpx.post(url, content=body, headers={"X-PayIn-Signature": "0" * 64})
    assert bad.status_code == 401
    stale = int(time.time()) - 3600
    replayed = httpx.post(
        url, content=body, headers={"X-PayIn-Signature": sign(body, pair.secret, stale)}
    )
    assert replayed.status_code == 401
    signed = httpx.post(url, content=body, headers={"X-PayIn-Signature": sign(body, pair.secret)})
    assert signed.status_code == 200
    again = httpx.post(url, content=body, headers={"X-PayIn-Signature": sign(body, pair.secret)})
    assert again.json()["data"]["duplicate"] is True
    assert _upstream_events(pair.front_node, "rejected") == 2
    wait_until(lambda: _upstream_events(pair.front_node, "not_on_chain") == 1)
    alerts = front_get(pair, "/api/v1/alerts?state=firing")["data"]["alerts"]
    assert ("upstream_discrepancy", "critical") in {(a["kind"], a["severity"]) for a in alerts}
    report = pair.front_node.cli("reconcile", expect=1)
    assert report["counts"]["upstream_not_on_chain"] == 1
    assert report["counts"]["upstream_unannounced"] == 0


def _upstream_events(node: Instance, status: str, kind: str = "%") -> int:
    (count,) = _query(
        node, "SELECT count(*) FROM upstream_event WHERE status = ? AND type LIKE ?", status, kind
    )[0]
    return int(count)


def _query(node: Instance, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
    path = node.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return list(db.execute(sql, parameters).fetchall())


def create_order(pair: Any, reference: str) -> httpx.Response:
    body = {
        "orderReference": reference,
        "amount": "3",
        "currency": "USDT",
        "chainId": "devnet",
        "paymentWindowMinutes": 55,
    }
    return httpx.post(
        pair.front_server.base_url + "/api/v1/orders", json=body, headers=pair.headers
    )


def _order_status(node: Instance, order_id: str) -> str | None:
    rows = _query(node, "SELECT status FROM payment_order WHERE id = ?", order_id)
    return rows[0][0] if rows else None


def test_orders_through_upstream_end_to_end(pair: Any, devnet: Devnet) -> None:
    """Created at PayIn at an address of ours, paid on chain, completed on both sides, PayIn's
    `order.completed` matched with ours; a cancel forwarded; PayIn's next address, which the
    front does not hold, refused with a critical alert and nothing recorded."""
    created = create_order(pair, "order-1")
    assert created.status_code == 201, created.text
    order = created.json()["data"]
    assert order["address"] == pair.addresses[0]
    assert _order_status(pair.payin_node, order["orderId"]) == "pending"  # PayIn's own order
    summary = front_get(pair, "/api/v1/address-pool/summary")["data"]["evm"]
    assert (summary["allocated"], summary["available"]) == (1, 2)
    again = create_order(pair, "order-1")
    assert (again.status_code, again.json()["data"]["orderId"]) == (200, order["orderId"])

    mine_past(devnet.url, datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00")))
    anvil.transfer(devnet.url, devnet.usdt, order["address"], 3 * USDT)
    anvil.mine(devnet.url, CONFIRMATIONS)
    wait_until(lambda: _order_status(pair.front_node, order["orderId"]) == "completed")
    wait_until(lambda: _upstream_events(pair.front_node, "matched", "order.completed") == 1)
    kinds = _query(pair.front_node, "SELECT type FROM event WHERE type LIKE 'order.%' ORDER BY seq")
    assert [k for (k,) in kinds] == ["order.created", "order.completed"]  # the front's own

    second = create_order(pair, "order-2").json()["data"]
    assert second["address"] == pair.addresses[1]
    cancelled = httpx.post(
        f"{pair.front_server.base_url}/api/v1/orders/{second['orderId']}/cancel",
        headers=pair.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    assert _order_status(pair.payin_node, second["orderId"]) == "cancelled"
    wait_until(lambda: _upstream_events(pair.front_node, "matched", "order.cancelled") == 1)

    assert create_order(pair, "order-3").status_code == 201
    refused = create_order(pair, "order-4")  # PayIn's fourth address: not the front's
    assert (refused.status_code, refused.json()["code"]) == (502, "UPSTREAM_ADDRESS_UNKNOWN")
    assert len(_query(pair.front_node, "SELECT id FROM payment_order")) == 3
    alerts = front_get(pair, "/api/v1/alerts?state=firing")["data"]["alerts"]
    assert ("upstream_address_unknown", "critical") in {(a["kind"], a["severity"]) for a in alerts}
    assert _upstream_events(pair.front_node, "order_unpaid") == 0
    assert _upstream_events(pair.front_node, "order_unknown") == 0
