"""Upstream mode's answers against the OpenAPI document: what PayIn says reaches the caller
with a status the document declares for the route (api/errors.py, upstream_refusal) — binds,
unbinds, a reference's look-up, an order's creation and its cancel.

A real PayIn-protocol peer (a second addrpool, `addrpool api`) refuses a bad key (401), a key
without the scope (403), a key over its rate limit (429) and an unbind of nothing (404). What no
local peer can be made to answer — a hosted PayIn's 400, 409 and 413, a status outside its
guide, an error with a 2xx or 3xx status — comes from a scripted server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.webhooks.signatures import sign_body
from tests.api.conformance import assert_conforms
from tests.fixtures.helpers import auth, import_into_pool, make_key, random_addresses
from tests.fixtures.orders import ORDER_CHAINS, order_body
from tests.fixtures.payin import refusal, scripted_payin
from tests.fixtures.server import running_server

BIND = "/api/v1/deposits/bind"
UNBIND = "/api/v1/deposits/unbind"
REFERENCE = "/api/v1/deposits/references/{deposit_reference}"
ORDERS = "/api/v1/orders"
CANCEL = "/api/v1/orders/{orderId}/cancel"
PEER_PER_MINUTE = 3
WEBHOOK_SECRET = "upstream-webhook-secret"


class Front:
    """addrpool in upstream mode before `upstream_url`, presenting `upstream_key` there."""

    def __init__(self, http: httpx.AsyncClient, doc: dict, key: str) -> None:
        self.http = http
        self.doc = doc
        self.headers = auth(key)

    async def bind(self, reference: str) -> httpx.Response:
        body = {"depositReference": reference, "protocol": "evm"}
        answer = await self.http.post(BIND, json=body, headers=self.headers)
        assert_conforms(self.doc, "post", BIND, answer)
        return answer

    async def unbind(self, reference: str) -> httpx.Response:
        body = {"depositReference": reference}
        answer = await self.http.post(UNBIND, json=body, headers=self.headers)
        assert_conforms(self.doc, "post", UNBIND, answer)
        return answer

    async def reference(self, reference: str) -> httpx.Response:
        path = f"/api/v1/deposits/references/{reference}"
        answer = await self.http.get(path, headers=self.headers)
        assert_conforms(self.doc, "get", REFERENCE, answer)
        return answer

    async def create_order(self, body: dict[str, Any]) -> httpx.Response:
        answer = await self.http.post(ORDERS, json=body, headers=self.headers)
        assert_conforms(self.doc, "post", ORDERS, answer)
        return answer

    async def cancel_order(self, order_id: str) -> httpx.Response:
        answer = await self.http.post(f"{ORDERS}/{order_id}/cancel", headers=self.headers)
        assert_conforms(self.doc, "post", CANCEL, answer)
        return answer


@asynccontextmanager
async def front(
    db: Database, database_url: str, upstream_url: str, upstream_key: str, **overrides: Any
) -> AsyncIterator[Front]:
    """Settings built whole, so that `upstream_url` goes through its validation."""
    settings = Settings(
        database_url=database_url,
        secret_key="test-secret-key-for-webhook-secrets",
        binding_backend="payin",
        upstream_url=upstream_url,
        upstream_api_key=SecretStr(upstream_key),
        upstream_retries=0,
        upstream_webhook_secret=SecretStr(WEBHOOK_SECRET),
        **overrides,
    )
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://front.test") as http:
            doc = (await http.get("/openapi.json")).json()
            yield Front(http, doc, await make_key(db, scopes=["admin"]))
    finally:
        await app.state.ctx.pool_alerts.close()
        await app.state.ctx.upstream.close()


def assert_code(answer: httpx.Response, status: int, code: str) -> None:
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text


@pytest.mark.server
async def test_a_real_peers_refusals_reach_the_caller_as_documented(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    addresses = random_addresses("evm", 3)
    await import_into_pool(db, "evm", addresses)
    peer_url = f"sqlite:///{tmp_path / 'payin.db'}"
    peer = Database(peer_url, pool_size=1)
    await upgrade(peer)
    await import_into_pool(peer, "evm", addresses)
    admin, reader, limited = [
        await make_key(peer, scopes=scopes)
        for scopes in (["admin"], ["deposits:read"], ["deposits:write"])
    ]
    await peer.dispose()
    env = {"ADDRPOOL_RATE_LIMITS__PER_MINUTE": str(PEER_PER_MINUTE)}
    with running_server(peer_url, command="api", extra_env=env) as payin:
        async with front(db, database_url, payin.base_url, admin) as good:
            assert (await good.bind("r1")).status_code == 201
            assert (await good.reference("r1")).status_code == 200  # PayIn's own answer
            assert (await good.unbind("r1")).status_code == 200
            assert_code(await good.unbind("r1"), 404, "REFERENCE_NOT_FOUND")  # passed on
        async with front(db, database_url, payin.base_url, "pk_test_" + "0" * 32) as unknown:
            for answer in (await unknown.bind("r2"), await unknown.reference("r2")):
                assert_code(answer, 502, "UPSTREAM_REFUSED")
                assert "ADDRPOOL_UPSTREAM_API_KEY" in answer.json()["message"]
        async with front(db, database_url, payin.base_url, reader) as read_only:
            assert_code(await read_only.bind("r2"), 502, "UPSTREAM_REFUSED")
        async with front(db, database_url, payin.base_url, limited) as busy:
            # A minute's window may start afresh once along the way: twice the limit and one.
            answers = [await busy.bind("r3") for _ in range(2 * PEER_PER_MINUTE + 1)]
    assert_code(next(a for a in answers if a.status_code != 200 and a.status_code != 201), 503,
                "UPSTREAM_RATE_LIMITED")  # fmt: skip


# PayIn's (status, envelope) → what the caller gets (status, code), on bind, unbind, reference.
SCRIPT = [
    (400, refusal("ValidationError", "VALIDATION_FAILED"), 400, "VALIDATION_FAILED"),
    (404, refusal("NotFound", "REFERENCE_NOT_FOUND"), 404, "REFERENCE_NOT_FOUND"),
    (409, refusal("Conflict", "CONCURRENT_UPDATE"), 409, "CONCURRENT_UPDATE"),
    (413, refusal("PayloadTooLarge", "PAYLOAD_TOO_LARGE"), 413, "PAYLOAD_TOO_LARGE"),
    (401, refusal("Unauthorized", "UNAUTHORIZED"), 502, "UPSTREAM_REFUSED"),
    (403, refusal("Forbidden", "FORBIDDEN"), 502, "UPSTREAM_REFUSED"),
    (429, refusal("TooManyRequests", "RATE_LIMITED"), 503, "UPSTREAM_RATE_LIMITED"),
    (422, refusal("Unprocessable", "UNPROCESSABLE"), 502, "UPSTREAM_REFUSED"),
    (418, refusal("Teapot", "TEAPOT"), 502, "UPSTREAM_REFUSED"),
    (302, refusal("Moved", "MOVED"), 502, "UPSTREAM_REFUSED"),
    (200, refusal("Odd", "ODD"), 502, "UPSTREAM_REFUSED"),
    (500, refusal("InternalError", "INTERNAL_ERROR"), 503, "UPSTREAM_UNAVAILABLE"),
    (
        503,
        refusal("InsufficientAddresses", "INSUFFICIENT_ADDRESSES"),
        503,
        "INSUFFICIENT_ADDRESSES",
    ),
]


async def test_every_answer_payin_may_give_becomes_a_documented_one(
    db: Database, database_url: str
) -> None:
    with scripted_payin() as payin:
        async with front(
            db, database_url, payin.url, "pk_test_upstream", chains=ORDER_CHAINS
        ) as caller:
            for status, body, expected, code in SCRIPT:
                payin.status, payin.body = status, body
                for answer in (
                    await caller.bind("r1"),
                    await caller.unbind("r1"),
                    await caller.reference("r1"),
                    await caller.create_order(order_body("o1")),
                    await caller.cancel_order("ord_unknownhere"),
                ):
                    assert_code(answer, expected, code)
                    if expected < 500 or status == 503:  # PayIn's words, as it said them
                        assert answer.json()["message"] == body["message"]


async def test_payins_webhooks_in_answer_as_documented(db: Database, database_url: str) -> None:
    with scripted_payin() as payin:
        async with front(db, database_url, payin.url, "pk_test_upstream") as caller:
            event = json.dumps({"id": "evt_1", "type": "deposit.pending", "data": {}}).encode()
            path = "/webhooks/payin"
            for signature, status in (
                ("0" * 64, 401),
                (sign_body(WEBHOOK_SECRET.encode(), event), 200),
            ):
                answer = await caller.http.post(
                    path, content=event, headers={"X-PayIn-Signature": signature}
                )
                assert answer.status_code == status, answer.text
                assert_conforms(caller.doc, "post", path, answer)
