"""POST/GET /api/v1/orders (docs/api.md, Orders) on both databases, through the app."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address, delivery, event, payment_order, webhook_endpoint
from tests.fixtures.helpers import assert_error_response, auth, load_pool, make_key
from tests.fixtures.orders import order_body

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ORDERS = "/api/v1/orders"


async def _create(client: httpx.AsyncClient, key: str, **fields) -> httpx.Response:
    return await client.post(ORDERS, json=order_body(**fields), headers=auth(key))


async def row_counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        allocated = await conn.scalar(
            select(func.count()).select_from(address).where(address.c.status == "allocated")
        )
        return {
            "orders": await conn.scalar(select(func.count()).select_from(payment_order)),
            # Order events only: the pool-low alert may add its own at any moment.
            "events": await conn.scalar(
                select(func.count()).select_from(event).where(event.c.type.like("order.%"))
            ),
            "deliveries": await conn.scalar(select(func.count()).select_from(delivery)),
            "allocated": allocated,
        }


async def test_create_returns_the_order_object(orders_client, db: Database, service_key) -> None:
    pool = await load_pool(db, "evm", 3)
    before = utc_now()
    response = await _create(
        orders_client,
        service_key,
        metadata={"cart": 7},
        successUrl="https://shop.example/ok",
        cancelUrl="https://shop.example/cancel",
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert re.fullmatch(r"ord_[0-9a-f]{32}", data["orderId"])
    assert data["address"] == data["paymentAddress"] == pool[0]
    assert data["paymentUrl"] == f"http://shop.test/pay/order/{data['orderId']}"
    assert data["qrCode"] == data["paymentUrl"] + "/qr.svg"
    expected = {
        "orderReference": "order_1",
        "status": "pending",
        "amount": "10.5",
        "currency": "USDT",
        "chainId": "ethereum-sepolia",
        "protocol": "evm",
        "confirmedReceived": "0",
        "remainingAmount": "10.5",
        "requiredConfirmations": 3,
        "metadata": {"cart": 7},
        "successUrl": "https://shop.example/ok",
        "cancelUrl": "https://shop.example/cancel",
        "txHash": None,
        "transfers": [],
        "latePayments": [],
        "otherPayments": [],
    }
    assert {k: data[k] for k in expected} == expected
    for moment in ("createdAt", "paymentWindowEndsAt", "gracePeriodEndsAt", "expiresAt"):
        assert ISO_MS.fullmatch(data[moment])
    assert data["expiresAt"] == data["gracePeriodEndsAt"]
    created = utc_now().fromisoformat(data["createdAt"].replace("Z", "+00:00"))
    window = utc_now().fromisoformat(data["paymentWindowEndsAt"].replace("Z", "+00:00"))
    grace = utc_now().fromisoformat(data["gracePeriodEndsAt"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= created <= utc_now()
    assert window - created == timedelta(minutes=10) and grace - window == timedelta(minutes=5)
    assert await row_counts(db) == {"orders": 1, "events": 1, "deliveries": 0, "allocated": 1}
    async with db.read() as conn:
        stored = (await conn.execute(select(event.c.type, event.c.data))).one()
    assert stored.type == "order.created"
    assert stored.data == {**data}
    shown = await orders_client.get(f"{ORDERS}/{data['orderId']}", headers=auth(service_key))
    assert shown.status_code == 200 and shown.json()["data"] == data
    by_ref = await orders_client.get(f"{ORDERS}/by-reference/order_1", headers=auth(service_key))
    assert by_ref.json()["data"] == data


async def test_public_url_makes_the_payment_url(db: Database, database_url, service_key) -> None:
    from api.app import create_app
    from tests.fixtures.orders import order_settings

    await load_pool(db, "evm", 1)
    app = create_app(order_settings(database_url, public_url="https://pay.example.com/"), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as http:
        data = (await _create(http, service_key)).json()["data"]
    await app.state.ctx.pool_alerts.close()
    assert data["paymentUrl"] == f"https://pay.example.com/pay/order/{data['orderId']}"


async def test_bsc_usdt_has_18_decimals(orders_client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 2)
    body = {"chainId": "bsc-testnet", "amount": "0.000000000000000001"}
    response = await _create(orders_client, service_key, **body)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["amount"] == "0.000000000000000001"
    async with db.read() as conn:
        assert await conn.scalar(select(payment_order.c.amount)) == 1
        assert await conn.scalar(select(payment_order.c.decimals)) == 18
    too_fine = await _create(
        orders_client, service_key, reference="o2", amount="0.0000001"
    )  # 7 decimals on a 6-decimal USDT
    assert too_fine.json()["code"] == "INVALID_AMOUNT"


async def test_same_fields_again_is_200_with_the_same_order(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 3)
    first = await _create(orders_client, service_key, metadata={"a": [1, 2]})
    again = await _create(
        orders_client,
        service_key,
        amount="10.50",
        metadata={"a": [1, 2]},
        paymentWindowMinutes=10,
        graceMinutes=5,
    )
    assert again.status_code == 200, again.text
    assert again.json()["data"] == first.json()["data"]
    assert await row_counts(db) == {"orders": 1, "events": 1, "deliveries": 0, "allocated": 1}


@pytest.mark.parametrize(
    "changed",
    [
        {"amount": "11"},
        {"currency": "USDC"},
        {"metadata": {"a": 1}},
        {"successUrl": "https://shop.example/other"},
        {"paymentWindowMinutes": 20},
        {"gracePeriodMinutes": 0},
    ],
    ids=["amount", "currency", "metadata", "successUrl", "window", "grace"],
)
async def test_other_fields_are_409_naming_the_existing_order(
    orders_client, db: Database, service_key, changed
) -> None:
    await load_pool(db, "evm", 3)
    first = (await _create(orders_client, service_key)).json()["data"]
    before = await row_counts(db)
    response = await _create(orders_client, service_key, **changed)
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "DUPLICATE_ORDER_REFERENCE" and body["error"] == "Conflict"
    assert body["existingOrderId"] == first["orderId"]
    assert await row_counts(db) == before


async def test_the_same_reference_after_the_order_ended_is_still_that_order(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 3)
    first = (await _create(orders_client, service_key)).json()["data"]
    cancel = await orders_client.post(
        f"{ORDERS}/{first['orderId']}/cancel", headers=auth(service_key)
    )
    assert cancel.status_code == 200
    again = await _create(orders_client, service_key)
    assert again.status_code == 200
    assert again.json()["data"]["status"] == "cancelled"
    assert again.json()["data"]["orderId"] == first["orderId"]


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"chainId": "ethereum-mainnet"}, "INVALID_CHAIN", "chainId"),
        ({"chainId": "polygon-amoy"}, "INVALID_CHAIN", "chainId"),  # configured, no RPC URL
        ({"chainId": "nowhere"}, "INVALID_CHAIN", "chainId"),
        ({"currency": "DAI"}, "INVALID_CURRENCY", "currency"),
        ({"chainId": "tron-nile", "currency": "USDC"}, "INVALID_CURRENCY", "currency"),
        ({"amount": "0"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "-1"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "1e3"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "1.1234567"}, "INVALID_AMOUNT", "amount"),
        ({"amount": " 1"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "NaN"}, "INVALID_AMOUNT", "amount"),
        ({"amount": 10}, "INVALID_AMOUNT", "amount"),
        ({"amount": "1" * 80}, "INVALID_AMOUNT", "amount"),
        ({"orderReference": "has space"}, "VALIDATION_FAILED", "orderReference"),
        ({"orderReference": ""}, "VALIDATION_FAILED", "orderReference"),
        ({"paymentWindowMinutes": 0}, "VALIDATION_FAILED", "paymentWindowMinutes"),
        ({"gracePeriodMinutes": -1}, "VALIDATION_FAILED", "gracePeriodMinutes"),
        ({"paymentWindowMinutes": 50, "graceMinutes": 11}, "VALIDATION_FAILED", None),
        ({"gracePeriodMinutes": 5, "graceMinutes": 6}, "VALIDATION_FAILED", None),
        ({"metadata": [1]}, "VALIDATION_FAILED", "metadata"),
        ({"successUrl": "ftp://shop.example"}, "INVALID_URL", "successUrl"),
        ({"cancelUrl": "https://u:p@shop.example"}, "INVALID_URL", "cancelUrl"),
    ],
    ids=lambda value: str(value)[:40],
)
async def test_bad_input_is_refused_and_writes_nothing(
    orders_client, db: Database, service_key, fields, code, field
) -> None:
    await load_pool(db, "evm", 2)
    await load_pool(db, "tron", 2)
    before = await row_counts(db)
    response = await _create(orders_client, service_key, **fields)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False and body["code"] == code, body
    if field is not None:
        assert body["details"][0]["field"] == field
    assert await row_counts(db) == before


async def test_http_urls_need_the_private_targets_setting(
    db: Database, database_url, service_key
) -> None:
    from api.app import create_app
    from tests.fixtures.orders import order_settings

    await load_pool(db, "evm", 1)
    app = create_app(order_settings(database_url, webhook_allow_private=False), db=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://x"
    ) as http:
        response = await _create(http, service_key, successUrl="http://shop.example/ok")
    await app.state.ctx.pool_alerts.close()
    assert response.json()["code"] == "INVALID_URL"
    assert "https" in response.json()["message"]


async def test_missing_fields(orders_client, service_key) -> None:
    response = await orders_client.post(ORDERS, json={}, headers=auth(service_key))
    assert_error_response(
        response,
        400,
        error="ValidationError",
        code="VALIDATION_FAILED",
        message="Required fields: orderReference, amount, currency, chainId",
        details=[
            {"field": f, "message": "Field required"}
            for f in ("orderReference", "amount", "currency", "chainId")
        ],
    )


async def test_empty_pool_is_503_and_writes_nothing(orders_client, db: Database, service_key):
    await load_pool(db, "tron", 2)  # another protocol's addresses do not help
    before = await row_counts(db)
    response = await _create(orders_client, service_key)
    assert_error_response(
        response,
        503,
        error="InsufficientAddresses",
        code="INSUFFICIENT_ADDRESSES",
        message="No available addresses in pool for protocol: evm",
    )
    assert await row_counts(db) == before


async def test_cooling_and_bound_addresses_are_never_allocated(
    orders_client, db: Database, service_key
) -> None:
    pool = await load_pool(db, "evm", 3)
    async with db.write() as conn:
        await conn.execute(
            address.update()
            .where(address.c.address == pool[0])
            .values(cooldown_until=utc_now() + timedelta(days=1), recycled_at=utc_now())
        )
        await conn.execute(
            address.update().where(address.c.address == pool[1]).values(status="bound")
        )
    first = await _create(orders_client, service_key)
    assert first.json()["data"]["address"] == pool[2]
    second = await _create(orders_client, service_key, reference="order_2")
    assert second.status_code == 503


async def test_a_bind_never_takes_an_allocated_address(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 2)
    for n in range(2):
        assert (await _create(orders_client, service_key, reference=f"o{n}")).status_code == 201
    bind = await orders_client.post(
        "/api/v1/deposits/bind",
        json={"depositReference": "user", "protocol": "evm"},
        headers=auth(service_key),
    )
    assert bind.status_code == 503 and bind.json()["code"] == "INSUFFICIENT_ADDRESSES"


async def test_order_created_fans_out_to_subscribed_endpoints(
    orders_client, db: Database, service_key
) -> None:
    admin = await make_key(db, scopes=["admin"])
    for events in (["order.created"], ["deposit.pending"]):
        created = await orders_client.post(
            "/api/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/in", "events": events},
            headers=auth(admin),
        )
        assert created.status_code == 201, created.text
    await load_pool(db, "evm", 1)
    assert (await _create(orders_client, service_key)).status_code == 201
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(webhook_endpoint.c.id, delivery.c.status).join(
                    delivery, delivery.c.endpoint_id == webhook_endpoint.c.id
                )
            )
        ).all()
    assert [status for _, status in rows] == ["pending"]


async def test_unknown_orders_are_404(orders_client, service_key) -> None:
    h = auth(service_key)
    for path in (f"{ORDERS}/ord_{'0' * 32}", f"{ORDERS}/by-reference/nobody"):
        response = await orders_client.get(path, headers=h)
        assert response.status_code == 404 and response.json()["code"] == "ORDER_NOT_FOUND"
    cancel = await orders_client.post(f"{ORDERS}/ord_{'0' * 32}/cancel", headers=h)
    assert cancel.status_code == 404 and cancel.json()["code"] == "ORDER_NOT_FOUND"
    bad = await orders_client.get(f"{ORDERS}/not-an-order", headers=h)
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", ORDERS, "orders:write"),
        ("GET", ORDERS, "orders:read"),
        ("GET", f"{ORDERS}/stats", "orders:read"),
        ("GET", f"{ORDERS}/by-reference/x", "orders:read"),
        ("GET", f"{ORDERS}/ord_{'0' * 32}", "orders:read"),
        ("POST", f"{ORDERS}/ord_{'0' * 32}/cancel", "orders:write"),
    ],
    ids=["create", "list", "stats", "by-reference", "get", "cancel"],
)
async def test_each_route_needs_its_scope(orders_client, db: Database, method, path, scope):
    other = "orders:write" if scope == "orders:read" else "orders:read"
    lacking = await make_key(db, scopes=["deposits:read", "deposits:write", other])
    response = await orders_client.request(method, path, json=order_body(), headers=auth(lacking))
    assert response.status_code == 403
    assert f"lacks the {scope} scope" in response.json()["message"]
    assert (await orders_client.request(method, path, json=order_body())).status_code == 401


async def test_an_allocated_address_is_neither_archived_nor_unarchived(
    orders_client, db: Database, service_key, admin_key
) -> None:
    """Unarchiving it would make it available while an order holds it (invariant 13)."""
    await load_pool(db, "evm", 1)
    order = (await _create(orders_client, service_key)).json()["data"]
    for action in ("archive", "unarchive"):
        response = await orders_client.patch(
            f"/api/v1/address-pool/addresses/{order['address']}/{action}",
            headers=auth(admin_key),
        )
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "ADDRESS_ALLOCATED"
    async with db.read() as conn:
        assert await conn.scalar(select(address.c.status)) == "allocated"
