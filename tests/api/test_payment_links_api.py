"""The payment links API in process, both databases (docs/api.md, Payment links): what it
answers, what it refuses (leaving the database as it was), its scopes and lifecycle."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from pool.kit.db import Database
from pool.kit.tables import audit_log, payment_link
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.orders import order_settings

LINKS = "/api/v1/payment-links"
SEPOLIA = {"currency": "USDT", "chainId": "ethereum-sepolia"}  # 6 decimals
BSC = {"currency": "USDT", "chainId": "bsc-testnet"}  # 18 decimals


def link_body(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Web Design Services - Invoice #2025-001",
        "description": "Logo design + 5 landing pages",
        "amount": "2500",
        "currencies": [SEPOLIA, BSC],
        "metadata": {"invoiceNumber": "INV-2025-001", "services": ["logo_design"]},
        **fields,
    }


async def _links_stored(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(payment_link)) or 0)


async def _create(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(LINKS, json=link_body(**fields), headers=auth(key))
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_a_link_is_created_as_a_draft_with_its_checkout_url(
    orders_client, db: Database, service_key
) -> None:
    response = await orders_client.post(LINKS, json=link_body(), headers=auth(service_key))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True and body["message"] == "Payment link created (draft)"
    link = body["data"]
    assert link["id"].startswith("pl_") and len(link["id"]) == 35
    assert link["status"] == link["state"] == "draft"
    assert link["checkoutUrl"] == f"http://shop.test/checkout/{link['slug']}"
    assert len(link["slug"]) == 12
    assert link["currencies"] == [SEPOLIA, BSC] and link["amount"] == "2500"
    assert (link["inventoryTotal"], link["inventoryReserved"], link["inventorySold"]) == (
        None,
        0,
        0,
    )
    assert link["inventoryAvailable"] is None and link["expiresAt"] is None
    assert link["metadata"] == link_body()["metadata"]
    got = await orders_client.get(f"{LINKS}/{link['id']}", headers=auth(service_key))
    assert got.json()["data"] == link
    async with db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.subject))).all()
    assert ("payment_link.create", link["id"]) in actions


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        (
            {"currencies": [{"currency": "USDT", "chainId": "solana"}]},
            "INVALID_CHAIN",
            "currencies[0].chainId",
        ),
        (
            {"currencies": [SEPOLIA, {"currency": "DAI", "chainId": "bsc-testnet"}]},
            "INVALID_CURRENCY",
            "currencies[1].currency",
        ),
        (
            {"currencies": [{"currency": "USDT", "chainId": "polygon-amoy"}]},
            "INVALID_CHAIN",
            "currencies[0].chainId",
        ),
        ({"amount": "1.0000001"}, "INVALID_AMOUNT", "amount"),  # more than USDT's 6 on Sepolia
        ({"amount": 2500}, "INVALID_AMOUNT", "amount"),
        ({"amount": "-5"}, "INVALID_AMOUNT", "amount"),
        ({"amount": "1e3"}, "INVALID_AMOUNT", "amount"),
        ({"currencies": []}, "VALIDATION_FAILED", "currencies"),
        ({"currencies": [SEPOLIA, SEPOLIA]}, "VALIDATION_FAILED", "currencies"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "VALIDATION_FAILED", "expiresAt"),
        ({"successUrl": "javascript:alert(1)"}, "INVALID_URL", "successUrl"),
        ({"title": "   "}, "VALIDATION_FAILED", "title"),
        ({"inventoryTotal": 0}, "VALIDATION_FAILED", "inventoryTotal"),
    ],
)
async def test_a_refused_link_says_why_and_writes_nothing(
    orders_client, db: Database, service_key, fields: dict[str, Any], code: str, field: str
) -> None:
    response = await orders_client.post(LINKS, json=link_body(**fields), headers=auth(service_key))
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["success"] is False and error["code"] == code, error
    assert field in {d.get("field") for d in error.get("details", [])} or field in error["message"]
    assert await _links_stored(db) == 0


async def test_a_private_key_in_the_metadata_is_refused_and_not_echoed(
    orders_client, db: Database, service_key
) -> None:
    secret = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    response = await orders_client.post(
        LINKS, json=link_body(metadata={"note": secret}), headers=auth(service_key)
    )
    assert response.status_code == 400 and secret[2:] not in response.text
    assert response.json()["code"] == "PRIVATE_KEY_REFUSED"
    assert await _links_stored(db) == 0


async def test_scopes_are_the_orders_scopes(orders_client, db: Database) -> None:
    reader = await make_key(db, scopes=["orders:read"])
    binder = await make_key(db, scopes=["deposits:write"])
    assert (
        await orders_client.post(LINKS, json=link_body(), headers=auth(reader))
    ).status_code == 403
    assert (await orders_client.get(LINKS, headers=auth(binder))).status_code == 403
    assert (await orders_client.get(LINKS, headers=auth(reader))).status_code == 200
    assert (await orders_client.get(LINKS)).status_code == 401
    assert await _links_stored(db) == 0


async def test_publish_archive_and_their_repeats(orders_client, service_key) -> None:
    link = await _create(orders_client, service_key)
    publish = f"{LINKS}/{link['id']}/publish"
    first = await orders_client.post(publish, headers=auth(service_key))
    assert first.status_code == 200 and first.json()["message"] == "Payment link published"
    published = first.json()["data"]
    assert published["status"] == published["state"] == "published"
    assert published["publishedAt"] is not None
    again = await orders_client.post(publish, headers=auth(service_key))
    assert again.json()["message"] == "Payment link was already published"
    assert again.json()["data"] == published
    archive = f"{LINKS}/{link['id']}/archive"
    archived = await orders_client.post(archive, headers=auth(service_key))
    assert archived.status_code == 200 and archived.json()["data"]["status"] == "archived"
    repeat = await orders_client.post(archive, headers=auth(service_key))
    assert repeat.json()["message"] == "Payment link was already archived"
    for refused in (
        await orders_client.post(publish, headers=auth(service_key)),
        await orders_client.patch(
            f"{LINKS}/{link['id']}", json={"title": "New"}, headers=auth(service_key)
        ),
    ):
        assert refused.status_code == 409 and refused.json()["code"] == "LINK_ARCHIVED"
    missing = await orders_client.post(f"{LINKS}/pl_0000/publish", headers=auth(service_key))
    assert missing.status_code == 404 and missing.json()["code"] == "LINK_NOT_FOUND"


async def test_patch_changes_only_what_is_sent(orders_client, service_key) -> None:
    link = await _create(orders_client, service_key, inventoryTotal=10)
    one = f"{LINKS}/{link['id']}"
    changed = await orders_client.patch(
        one,
        json={"title": "Invoice #2", "description": None, "expiresAt": "2999-01-01T00:00:00"},
        headers=auth(service_key),
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["title"], data["description"], data["expiresAt"]) == (
        "Invoice #2",
        None,
        "2999-01-01T00:00:00.000Z",
    )
    assert data["inventoryTotal"] == 10 and data["metadata"] == link["metadata"]
    unlimited = await orders_client.patch(
        one, json={"inventoryTotal": None}, headers=auth(service_key)
    )
    assert unlimited.json()["data"]["inventoryTotal"] is None
    for body in ({}, {"title": None}, {"inventoryTotal": -1}, {"expiresAt": "2001-01-01"}):
        refused = await orders_client.patch(one, json=body, headers=auth(service_key))
        assert refused.status_code == 400, (body, refused.text)
    after = await orders_client.get(one, headers=auth(service_key))
    assert after.json()["data"]["title"] == "Invoice #2"


async def test_inventory_may_not_fall_below_what_orders_hold(
    orders_client, db: Database, service_key
) -> None:
    from tests.api.test_checkout_page import checkout_post

    await load_pool(db, "evm", 3)
    link = await _create(orders_client, service_key, inventoryTotal=5, currencies=[SEPOLIA])
    await orders_client.post(f"{LINKS}/{link['id']}/publish", headers=auth(service_key))
    for _ in range(2):
        assert (await checkout_post(orders_client, link["slug"])).status_code == 303
    one = f"{LINKS}/{link['id']}"
    refused = await orders_client.patch(one, json={"inventoryTotal": 1}, headers=auth(service_key))
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_INVENTORY"
    data = (await orders_client.get(one, headers=auth(service_key))).json()["data"]
    assert (data["inventoryTotal"], data["inventoryReserved"], data["inventoryAvailable"]) == (
        5,
        2,
        3,
    )
    two = await orders_client.patch(one, json={"inventoryTotal": 2}, headers=auth(service_key))
    assert two.json()["data"]["state"] == "sold_out"
    listed = await orders_client.get("/api/v1/orders", headers=auth(service_key))
    assert {o["paymentLinkId"] for o in listed.json()["data"]["orders"]} == {link["id"]}


async def test_the_list_filters_by_status_newest_first(orders_client, service_key) -> None:
    first = await _create(orders_client, service_key, title="First")
    second = await _create(orders_client, service_key, title="Second")
    await orders_client.post(f"{LINKS}/{second['id']}/publish", headers=auth(service_key))
    every = (await orders_client.get(LINKS, headers=auth(service_key))).json()["data"]
    assert [link["id"] for link in every["paymentLinks"]] == [second["id"], first["id"]]
    assert every["pagination"] == {"page": 1, "limit": 20, "total": 2, "totalPages": 1}
    drafts = await orders_client.get(f"{LINKS}?status=draft", headers=auth(service_key))
    assert [link["id"] for link in drafts.json()["data"]["paymentLinks"]] == [first["id"]]
    bad = await orders_client.get(f"{LINKS}?status=sold", headers=auth(service_key))
    assert bad.status_code == 400


async def test_upstream_mode_serves_no_payment_links(database_url: str, db: Database) -> None:
    settings = order_settings(
        database_url,
        binding_backend="payin",
        upstream_url="http://127.0.0.1:9",
        upstream_api_key="k",
    )
    app = create_app(settings, db=db)
    key = await make_key(db, scopes=None)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        response = await client.post(LINKS, json=link_body(), headers=auth(key))
    await app.state.ctx.pool_alerts.close()
    assert response.status_code == 409 and response.json()["code"] == "UPSTREAM_MODE"
    assert await _links_stored(db) == 0
