"""Webhook endpoints over the API: secrets shown once and stored sealed, subscriptions,
deliveries written with their events (including PostgreSQL's one-statement bind)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import delivery, event, webhook_endpoint
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.webhook_targets import NOT_PUBLIC_LITERALS

ENDPOINTS = "/api/v1/webhooks/endpoints"


@pytest.fixture
async def admin(db: Database) -> dict[str, str]:
    return auth(await make_key(db, scopes=["admin"]))


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> dict:
    payload = {"url": "http://127.0.0.1:9/hook", "events": ["deposit.confirmed"], **body}
    response = await client.post(ENDPOINTS, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_secret_is_shown_once_and_stored_sealed(client, admin, db: Database) -> None:
    created = await create(client, admin, description="shop")
    assert created["secret"].startswith("whsec_")
    assert created["signatureScheme"] == "body"
    listed = (await client.get(ENDPOINTS, headers=admin)).json()["data"]["endpoints"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    async with db.read() as conn:
        stored = (await conn.execute(select(webhook_endpoint))).one()._mapping
    assert created["secret"] not in {str(v) for v in stored.values()}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"events": ["deposit.nope"]}, "VALIDATION_FAILED"),
        ({"events": []}, "VALIDATION_FAILED"),
        ({"url": "ftp://example.com/x"}, "INVALID_URL"),
        ({"url": "https://user:pw@example.com/x"}, "INVALID_URL"),
        ({"signatureScheme": "md5"}, "VALIDATION_FAILED"),
    ],
)
async def test_bad_endpoints_are_refused(client, admin, body, code, db: Database) -> None:
    payload = {"url": "http://127.0.0.1:9/hook", "events": ["deposit.confirmed"], **body}
    response = await client.post(ENDPOINTS, json=payload, headers=admin)
    assert response.status_code == 400
    assert response.json()["code"] == code
    async with db.read() as conn:
        assert (await conn.execute(select(webhook_endpoint))).first() is None


async def test_private_targets_need_the_explicit_setting(settings: Settings, db: Database) -> None:
    strict = settings.model_copy(update={"webhook_allow_private": False})
    app = create_app(strict, db=db)
    headers = auth(await make_key(db, scopes=["webhooks:write"]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        plain = await c.post(
            ENDPOINTS,
            json={"url": "http://example.com/x", "events": ["deposit.pending"]},
            headers=headers,
        )
        loopback = await c.post(
            ENDPOINTS,
            json={"url": "https://127.0.0.1/x", "events": ["deposit.pending"]},
            headers=headers,
        )
    assert plain.json()["code"] == "INVALID_URL"
    assert loopback.json()["code"] == "PRIVATE_ADDRESS_REFUSED"


async def test_a_bind_writes_one_delivery_per_subscribed_endpoint(
    client, admin, db: Database
) -> None:
    bound = await create(client, admin, events=["deposit.address_bound"])
    await create(client, admin, events=["deposit.confirmed"])  # not subscribed to binds
    await load_pool(db, "evm", 3)
    response = await client.post(
        "/api/v1/deposits/bind", json={"depositReference": "u1", "protocol": "evm"}, headers=admin
    )
    assert response.status_code == 201
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(delivery.c.endpoint_id, event.c.type, delivery.c.status).join(
                    event, event.c.seq == delivery.c.event_seq
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [(bound["id"], "deposit.address_bound", "pending")]


async def test_update_rotate_test_and_delete(client, admin, db: Database) -> None:
    created = await create(client, admin)
    url = f"{ENDPOINTS}/{created['id']}"
    patched = await client.patch(
        url,
        json={"events": ["deposit.pending", "deposit.reverted"], "signatureScheme": "timestamped"},
        headers=admin,
    )
    assert patched.json()["data"]["events"] == ["deposit.pending", "deposit.reverted"]
    assert patched.json()["data"]["signatureScheme"] == "timestamped"
    rotated = (await client.post(f"{url}/rotate-secret", headers=admin)).json()["data"]
    assert rotated["secret"] != created["secret"] and rotated["previousSecretValidUntil"]
    tested = await client.post(f"{url}/test", headers=admin)
    assert tested.status_code == 202
    deliveries = (
        await client.get(f"/api/v1/webhooks/deliveries?endpointId={created['id']}", headers=admin)
    ).json()["data"]
    assert [(d["eventType"], d["status"]) for d in deliveries["deliveries"]] == [
        ("test.event", "pending")
    ]
    deleted = (await client.delete(url, headers=admin)).json()["data"]
    assert deleted["cancelledDeliveries"] == 1
    assert (await client.get(url, headers=admin)).status_code == 404
    statuses = (
        await client.get("/api/v1/webhooks/deliveries?status=cancelled", headers=admin)
    ).json()["data"]
    assert statuses["pagination"]["total"] == 1


async def test_only_failed_deliveries_are_retried(client, admin) -> None:
    created = await create(client, admin)
    await client.post(f"{ENDPOINTS}/{created['id']}/test", headers=admin)
    [pending] = (await client.get("/api/v1/webhooks/deliveries", headers=admin)).json()["data"][
        "deliveries"
    ]
    retried = await client.post(f"/api/v1/webhooks/deliveries/{pending['id']}/retry", headers=admin)
    assert retried.status_code == 409
    assert (
        await client.post("/api/v1/webhooks/deliveries/dlv_nope/retry", headers=admin)
    ).status_code == 404


async def test_scopes(client, db: Database) -> None:
    reader = auth(await make_key(db, scopes=["webhooks:read"]))
    assert (await client.get(ENDPOINTS, headers=reader)).status_code == 200
    refused = await client.post(
        ENDPOINTS,
        json={"url": "http://127.0.0.1:9/x", "events": ["deposit.pending"]},
        headers=reader,
    )
    assert refused.status_code == 403


@pytest.fixture
async def strict(settings: Settings, db: Database):
    """An app with the default rule: https to public addresses only."""
    app = create_app(settings.model_copy(update={"webhook_allow_private": False}), db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client
    await app.state.ctx.pool_alerts.close()


AUDITED = NOT_PUBLIC_LITERALS  # accepted with 201 before: Python 3.11's is_global lets them through
MALFORMED = [  # 500 before (the first three), or stored as given
    "https://[8.8.8.8]/",
    "https://[::1/x",
    "https://" + "a" * 64 + ".example/x",
    "https://" + "a." * 127 + "example/x",
    "https://8.8.8.8/a b",
    "https://8.8.8.8/x\r\nX-Injected: 1",
    "https://8.8.8.8/x\n",
    " https://8.8.8.8/x",
    "https://8.8.8.8:0/x",
    "https://[::1]x/",
]


async def _creating_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, code: str, db: Database
) -> None:
    """An endpoint for `url` is refused with a 400 carrying `code`, and nothing is stored."""
    response = await client.post(
        ENDPOINTS, json={"url": url, "events": ["deposit.pending"]}, headers=headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    async with db.read() as conn:
        assert (await conn.execute(select(webhook_endpoint))).first() is None


@pytest.mark.parametrize("url", AUDITED)
async def test_addresses_that_are_not_public_unicast_are_refused(
    strict, url: str, db: Database
) -> None:
    headers = auth(await make_key(db, scopes=["webhooks:write"]))
    await _creating_is_refused(strict, headers, url, "PRIVATE_ADDRESS_REFUSED", db)


@pytest.mark.parametrize("url", MALFORMED)
async def test_malformed_urls_are_a_400_on_create_and_update(
    client, admin, url: str, db: Database
) -> None:
    await _creating_is_refused(client, admin, url, "INVALID_URL", db)
    created = await create(client, admin)
    patched = await client.patch(f"{ENDPOINTS}/{created['id']}", json={"url": url}, headers=admin)
    assert (patched.status_code, patched.json()["code"]) == (400, "INVALID_URL")
    kept = (await client.get(f"{ENDPOINTS}/{created['id']}", headers=admin)).json()["data"]
    assert kept["url"] == created["url"]


async def test_test_event_can_be_subscribed_to(client, admin) -> None:
    created = await create(client, admin, events=["test.event", "deposit.pending"])
    assert created["events"] == ["deposit.pending", "test.event"]
    url = f"{ENDPOINTS}/{created['id']}"
    patched = await client.patch(url, json={"events": ["test.event"]}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["events"] == ["test.event"]


async def test_a_test_event_goes_to_its_endpoint_alone_even_when_others_subscribe(
    client, admin
) -> None:
    tested = await create(client, admin, events=["test.event"])
    await create(client, admin, events=["test.event"])
    sent = await client.post(f"{ENDPOINTS}/{tested['id']}/test", headers=admin)
    assert sent.status_code == 202, sent.text
    listed = (await client.get("/api/v1/webhooks/deliveries", headers=admin)).json()["data"]
    assert [(d["endpointId"], d["eventType"]) for d in listed["deliveries"]] == [
        (tested["id"], "test.event")
    ]
