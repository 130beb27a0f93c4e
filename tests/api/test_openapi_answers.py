"""Real answers against the OpenAPI document: every operation, with data in every list, each
answer's status, content type, body and headers as declared (tests/api/conformance.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from api.app import create_app
from chains.checks.reconciler import reconcile
from chains.hd import derive_from_key
from pool.alerts.repository import fire_alert
from pool.kit.clock import utc_now
from pool.kit.config import (
    ChainSettings,
    RateLimitSettings,
    ReconcileSettings,
    RefillSettings,
    Settings,
)
from pool.kit.db import Database
from pool.kit.tables import deposit
from pool.refill.switch import KeyChoice, RefillValues, enable
from tests.api.conformance import assert_conforms, operations
from tests.api.test_import_api import V1_M_0H
from tests.fixtures.helpers import add_deposit, auth, load_pool, make_key, random_addresses
from tests.fixtures.orders import order_body
from tests.fixtures.server import free_port

BIND = "/api/v1/deposits/bind"
POOL = "/api/v1/address-pool"
HOOKS = "/api/v1/webhooks"
UPSTREAM_ONLY = {("post", "/webhooks/payin")}  # tests/api/test_upstream_answers.py


class Checked:
    """A client that checks every answer against the document, and remembers the operations
    it saw."""

    def __init__(self, http: httpx.AsyncClient, doc: dict[str, Any], key: str) -> None:
        self.http = http
        self.doc = doc
        self.headers = auth(key)
        self.seen: set[tuple[str, str]] = set()

    async def __call__(
        self, method: str, template: str, *, status: int, path: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        kwargs.setdefault("headers", self.headers)
        response = await self.http.request(method, path or template, **kwargs)
        assert response.status_code == status, (method, path or template, response.text)
        assert_conforms(self.doc, method, template, response)
        self.seen.add((method, template))
        return response


@pytest.fixture
def watched(settings: Settings) -> Settings:
    """A chain whose only RPC endpoint refuses connections: reconciliation reports it
    unverified, /health reports it not watched yet."""
    sepolia = ChainSettings(rpc_urls=[f"http://127.0.0.1:{free_port()}"], rpc_timeout=1.0)
    # No grace: a confirmed deposit without its event is reported at once.
    no_grace = ReconcileSettings(grace=timedelta(0), duty_cycle=1.0)
    return settings.model_copy(
        update={"chains": {"ethereum-sepolia": sepolia}, "reconcile": no_grace}
    )


@pytest.fixture
async def checked(watched: Settings, db: Database) -> AsyncIterator[Checked]:
    app = create_app(watched, db=db, monitored_chains={"evm": ["ethereum-sepolia"], "tron": []})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        doc = (await http.get("/openapi.json")).json()
        yield Checked(http, doc, await make_key(db, scopes=["admin"]))
    await app.state.ctx.pool_alerts.close()


async def test_every_operation_answers_as_its_document_says(
    checked: Checked, db: Database, watched: Settings
) -> None:
    call = checked
    await load_pool(db, "evm", 3)
    await load_pool(db, "tron", 1)
    await _deposits(call, db)
    await _pool(call, db)
    await _webhooks(call)
    await _orders(call)
    await _payment_links(call)
    await _operations(call, db, watched)
    await _refusals(call, db)
    assert operations(call.doc) - UPSTREAM_ONLY == call.seen


async def _deposits(call: Checked, db: Database) -> None:
    body = {"depositReference": "r1", "protocol": "evm", "metadata": {"tier": 2}}
    await call("post", BIND, status=201, json=body)
    await call("post", BIND, status=200, json=body)
    await add_deposit(db, "r1", amount=49_990_000)
    async with db.write() as conn:  # credited: in the daily totals
        await conn.execute(update(deposit).values(confirmed_at=utc_now()))
    await add_deposit(db, "r1", n=2, status="pending")
    await call("get", "/api/v1/deposits", status=200)
    await call("get", "/api/v1/deposits/{deposit_id}", path="/api/v1/deposits/dep_1", status=200)
    await call("get", "/api/v1/deposits/references", status=200)
    one = "/api/v1/deposits/references/{deposit_reference}"
    await call("get", one, path="/api/v1/deposits/references/r1", status=200)
    await call("post", BIND, status=201, json={"depositReference": "r2", "protocol": "tron"})
    await call("post", "/api/v1/deposits/unbind", status=200, json={"depositReference": "r2"})
    await _resolutions(call, db)


async def _resolutions(call: Checked, db: Database) -> None:
    """Two deposits nobody was credited with: one attributed, one refunded."""
    await add_deposit(db, "r1", n=3)
    await add_deposit(db, "r1", n=4, status="pending")
    async with db.write() as conn:
        nobodys = deposit.c.id.in_(["dep_3", "dep_4"])
        await conn.execute(update(deposit).where(nobodys).values(binding_id=None))
    attribute = "/api/v1/deposits/{deposit_id}/attribute"
    to_r1 = {"depositReference": "r1", "reason": "the customer's ticket"}
    await call("post", attribute, path="/api/v1/deposits/dep_3/attribute", status=200, json=to_r1)
    resolve = "/api/v1/deposits/{deposit_id}/resolve"
    refunded = {"outcome": "refunded", "note": "sent back"}
    await call("post", resolve, path="/api/v1/deposits/dep_4/resolve", status=200, json=refunded)
    await call("post", attribute, path="/api/v1/deposits/dep_4/attribute", status=409, json=to_r1)
    unknown = "/api/v1/deposits/dep_9/resolve"
    await call("post", resolve, path=unknown, status=404, json=refunded)


async def _pool(call: Checked, db: Database) -> None:
    await call("get", f"{POOL}/summary", status=200)
    await call("get", f"{POOL}/availability", path=f"{POOL}/availability?protocol=evm", status=200)
    await call("get", f"{POOL}/addresses", status=200)
    available = f"{POOL}/addresses?protocol=evm&status=available"
    free = (await call("get", f"{POOL}/addresses", path=available, status=200)).json()
    free = free["data"]["addresses"][0]["address"]
    archive = f"{POOL}/addresses/{{address}}/archive"
    await call("patch", archive, path=f"{POOL}/addresses/{free}/archive", status=200)
    unarchive = f"{POOL}/addresses/{{address}}/unarchive"
    await call("patch", unarchive, path=f"{POOL}/addresses/{free}/unarchive", status=200)
    listed = {"protocol": "evm", "addresses": [*random_addresses("evm", 2), "0xnope"]}
    await call("post", f"{POOL}/addresses", status=400, json=listed)  # the problems listed
    await call("post", f"{POOL}/addresses", status=201, json={**listed, "skipInvalid": True})
    await call("post", f"{POOL}/addresses", status=200, json={**listed, "skipInvalid": True})
    xpub = {"protocol": "evm", "xpub": V1_M_0H, "count": 3}
    await call("post", f"{POOL}/xpub", status=201, json=xpub)
    await call("post", f"{POOL}/xpub", status=200, json=xpub)
    await _refill(call, db)


async def _refill(call: Checked, db: Database) -> None:
    """The key just imported from, marked for refill: the read-only view lists it."""
    await enable(
        db, choice=KeyChoice("evm", public_key=V1_M_0H), branch=0, values=RefillValues(),
        settings=RefillSettings(), derive=derive_from_key, actor="test",
    )  # fmt: skip
    listed = await call("get", f"{POOL}/refill", status=200)
    assert listed.json()["data"]["refills"][0]["nextIndex"] == 3


async def _webhooks(call: Checked) -> None:
    target = {"url": "http://127.0.0.1:9/hook", "events": ["deposit.confirmed"]}
    created = await call("post", f"{HOOKS}/endpoints", status=201, json=target)
    endpoint_id = created.json()["data"]["id"]
    one = f"{HOOKS}/endpoints/{{endpoint_id}}"
    path = f"{HOOKS}/endpoints/{endpoint_id}"
    await call("get", f"{HOOKS}/endpoints", status=200)
    await call("get", one, path=path, status=200)
    await call("patch", one, path=path, status=200, json={"description": "shop"})
    await call("post", f"{one}/rotate-secret", path=f"{path}/rotate-secret", status=200)
    await call("post", f"{one}/test", path=f"{path}/test", status=202)
    listed = await call("get", f"{HOOKS}/deliveries", status=200)
    delivery_id = listed.json()["data"]["deliveries"][0]["id"]
    retry = f"{HOOKS}/deliveries/{{delivery_id}}/retry"
    await call("post", retry, path=f"{HOOKS}/deliveries/{delivery_id}/retry", status=409)
    await call("post", f"{HOOKS}/deliveries/retry-failed", status=200)
    replay = {"since": "2020-01-01T00:00:00Z", "reason": "receiver restored a backup"}
    await call("post", f"{one}/replay", path=f"{path}/replay", status=200, json=replay)
    await call("delete", one, path=path, status=200)
    pulled = await call("get", "/api/v1/events", path="/api/v1/events?limit=2", status=200)
    assert pulled.json()["data"]["events"] and pulled.json()["data"]["hasMore"]


async def _orders(call: Checked) -> None:
    orders = "/api/v1/orders"
    # The preset gives ethereum-sepolia USDC only.
    body = order_body(currency="USDC", metadata={"cart": 1}, successUrl="https://shop.example/ok")
    created = await call("post", orders, status=201, json=body)
    await call("post", orders, status=200, json=body)
    await call("post", orders, status=409, json={**body, "amount": "11"})
    order_id = created.json()["data"]["orderId"]
    one = f"{orders}/{{orderId}}"
    await call("get", one, path=f"{orders}/{order_id}", status=200)
    await call("get", one, path=f"{orders}/ord_nope", status=404)
    by_reference = f"{orders}/by-reference/{{orderReference}}"
    await call("get", by_reference, path=f"{orders}/by-reference/order_1", status=200)
    await call("get", orders, path=f"{orders}?status=pending,completed", status=200)
    await call("get", f"{orders}/stats", status=200)
    cancel = f"{one}/cancel"
    await call("post", cancel, path=f"{orders}/{order_id}/cancel", status=200)


async def _payment_links(call: Checked) -> None:
    links = "/api/v1/payment-links"
    body = {
        "title": "Invoice #2025-001",
        "amount": "2500",
        "currencies": [{"currency": "USDC", "chainId": "ethereum-sepolia"}],
        "inventoryTotal": 3,
        "metadata": {"invoiceNumber": "INV-2025-001"},
    }
    link_id = (await call("post", links, status=201, json=body)).json()["data"]["id"]
    one = f"{links}/{{id}}"
    path = f"{links}/{link_id}"
    await call("get", links, path=f"{links}?status=draft", status=200)
    await call("get", one, path=path, status=200)
    await call("get", one, path=f"{links}/pl_nope", status=404)
    await call("patch", one, path=path, status=200, json={"inventoryTotal": 5})
    publish = f"{one}/publish"
    await call("post", publish, path=f"{path}/publish", status=200)
    await call("post", f"{one}/archive", path=f"{path}/archive", status=200)
    await call("post", publish, path=f"{path}/publish", status=409)


async def _operations(call: Checked, db: Database, watched: Settings) -> None:
    async with db.write() as conn:
        await fire_alert(
            conn, kind="pool_low", subject="pool_low:evm", severity="warning",
            value="1", details={"protocol": "evm", "available": 1}, now=utc_now(),
        )  # fmt: skip
    await call("get", "/api/v1/alerts", status=200)
    await _alert_actions(call, db)
    await call("get", "/api/v1/reconciliation/report", status=404)
    report = await reconcile(watched, db)
    assert report["items"] and report["chains"]["ethereum-sepolia"]["error"]
    await call("get", "/api/v1/reconciliation/report", status=200)
    totals = "/api/v1/reconciliation/totals"
    json_totals = await call("get", totals, status=200)
    assert json_totals.json()["data"]["totals"]
    await call("get", totals, path=f"{totals}?format=csv", status=200)
    await call("get", "/health", status=200)
    await call("get", "/metrics", status=200)


async def _alert_actions(call: Checked, db: Database) -> None:
    listed = (await call.http.get("/api/v1/alerts", headers=call.headers)).json()
    alert_id = listed["data"]["alerts"][0]["id"]
    for action, body in [
        ("acknowledge", {"reason": "on it"}),
        ("silence", {"reason": "known", "minutes": 30}),
        ("unsilence", {"reason": "fixed"}),
    ]:
        one = f"/api/v1/alerts/{{id}}/{action}"
        path = f"/api/v1/alerts/{alert_id}/{action}"
        await call("post", one, path=path, status=200, json=body)
        await call("post", one, path=f"/api/v1/alerts/999999/{action}", status=404, json=body)
        await call("post", one, path=path, status=400, json={"reason": ""})
    acknowledge = "/api/v1/alerts/{id}/acknowledge"
    path = f"/api/v1/alerts/{alert_id}/acknowledge"
    await call("post", acknowledge, path=path, status=409, json={"reason": "twice"})
    unsilence = "/api/v1/alerts/{id}/unsilence"
    path = f"/api/v1/alerts/{alert_id}/unsilence"
    await call("post", unsilence, path=path, status=409, json={"reason": "twice"})


async def _refusals(call: Checked, db: Database) -> None:
    """Errors: with and without the rate-limit headers, as declared for each."""
    await call("post", BIND, status=401, headers={}, json={})
    reader = auth(await make_key(db, scopes=["deposits:read"]))
    await call("post", BIND, status=403, headers=reader, json={})
    await call("post", BIND, status=400, json={"depositReference": "r3", "protocol": "btc"})
    # Refused before the key is read (api/text_guard.py): no rate-limit headers.
    nul = b'{"depositReference": "\\u0000", "protocol": "evm"}'
    refused = await call("post", BIND, status=400, content=nul, headers=call.headers)
    assert "x-ratelimit-limit" not in refused.headers
    one = "/api/v1/deposits/{deposit_id}"
    await call("get", one, path="/api/v1/deposits/dep_9", status=404)
    nowhere = await call("get", one, path="/api/v1/deposits/a%2Fb", status=404)  # no route
    assert "x-ratelimit-limit" not in nowhere.headers
    bound = (await call.http.get(f"{POOL}/addresses?status=bound", headers=call.headers)).json()
    address = bound["data"]["addresses"][0]["address"]
    archive = f"{POOL}/addresses/{{address}}/archive"
    await call("patch", archive, path=f"{POOL}/addresses/{address}/archive", status=409)
    await call("post", BIND, status=413, content=b"x" * 2_000_000, headers=call.headers)


async def test_a_refused_request_carries_retry_after_and_the_window_it_met(
    settings: Settings, db: Database
) -> None:
    limited = settings.model_copy(update={"rate_limits": RateLimitSettings(per_second=2)})
    app = create_app(limited, db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        doc = (await http.get("/openapi.json")).json()
        call = Checked(http, doc, await make_key(db, scopes=None))
        answers = [await http.get("/api/v1/deposits", headers=call.headers) for _ in range(6)]
    await app.state.ctx.pool_alerts.close()
    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]
    for answer in answers:
        assert_conforms(doc, "get", "/api/v1/deposits", answer)
    assert refused[0].headers["x-ratelimit-remaining"] == "0"
    assert refused[0].headers["x-ratelimit-limit"] == "2"
    assert int(refused[0].headers["retry-after"]) >= 1


async def test_without_rate_limits_nothing_about_them_is_declared_or_sent(
    settings: Settings, db: Database
) -> None:
    off = settings.model_copy(update={"rate_limits": RateLimitSettings(enabled=False)})
    app = create_app(off, db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        doc = (await http.get("/openapi.json")).json()
        answer = await http.get("/api/v1/deposits", headers=auth(await make_key(db, scopes=None)))
    await app.state.ctx.pool_alerts.close()
    assert answer.status_code == 200
    assert_conforms(doc, "get", "/api/v1/deposits", answer)
    assert not [h for h in answer.headers if h.startswith("x-ratelimit")]
    text = str(doc)
    assert "X-RateLimit" not in text and "'429'" not in text
