"""The OpenAPI document: complete enough to generate a client, and its pages work offline."""

from __future__ import annotations

import importlib
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs  # schemathesis' own validator
import pytest

from api.app import create_app
from pool.kit.config import Settings
from pool.kit.db import Database
from scripts.bench.fuzz import prepare
from tests.conftest import run_sync
from tests.fixtures.helpers import add_deposit, auth, load_pool
from tests.fixtures.server import running_server

ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


def document() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite:///unused.db", metrics_enabled=True))
    return app.openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_no_operation_documents_a_422_and_every_error_is_the_envelope() -> None:
    doc = document()
    assert "422" not in json.dumps(doc)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        assert "400" in op["responses"], (method, path)
        for status, response in op["responses"].items():
            if status >= "400" and path != "/health":
                assert response["content"] == ERROR, (method, path, status)


def test_keyed_routes_name_the_bearer_scheme_and_its_refusals() -> None:
    doc = document()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`addrpool keys create`); `X-API-Key: …` works too",
    }
    keyed = [(m, p, op) for m, p, op in operations(doc) if p.startswith("/api/v1/")]
    assert len(keyed) == 32
    for method, path, op in keyed:
        assert op["security"] == [{"bearerAuth": []}], (method, path)
        assert {"401", "403", "429"} <= set(op["responses"]), (method, path)
    assert "security" not in doc["paths"]["/health"]["get"]


def test_creates_document_both_statuses_and_csv_is_text() -> None:
    paths = document()["paths"]
    for path in ("/api/v1/deposits/bind", "/api/v1/address-pool/addresses"):
        answers = paths[path]["post"]["responses"]
        assert answers["201"]["content"] == answers["200"]["content"]
        assert answers["201"]["content"]["application/json"]["schema"]["$ref"].endswith("Answer")
    test_event = paths["/api/v1/webhooks/endpoints/{endpoint_id}/test"]["post"]["responses"]
    assert "202" in test_event and "200" not in test_event
    assert "503" in paths["/api/v1/deposits/bind"]["post"]["responses"]
    totals = paths["/api/v1/reconciliation/totals"]["get"]["responses"]["200"]["content"]
    assert set(totals) == {"application/json", "text/csv"}
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]


async def test_docs_pages_load_only_local_assets(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
        assert urls, page
        assert not [u for u in urls if not u.startswith("/")], (page, urls)
        for url in urls:
            response = await client.get(url)
            assert response.status_code == 200 and response.content, (page, url)
    assert "cdn" not in (await client.get("/redoc")).text.lower()


@pytest.mark.server
def test_a_generated_client_binds_looks_up_and_unbinds(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = run_sync(prepare(database_url, pool_size=3))
    env = {"ADDRPOOL_SECRET_KEY": secrets.token_hex(16)}
    with running_server(database_url, command="api", extra_env=env) as server:
        spec = tmp_path / "openapi.json"
        spec.write_bytes(httpx.get(f"{server.base_url}/openapi.json").content)
        generated = subprocess.run(
            [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none",
             "--output-path", str(tmp_path / "addrpool_client"), "--fail-on-warning"],
            capture_output=True, text=True, cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert generated.returncode == 0, generated.stdout + generated.stderr
        monkeypatch.syspath_prepend(str(tmp_path))
        _bind_look_up_and_unbind(server.base_url, key)


def _bind_look_up_and_unbind(base_url: str, key: str) -> None:
    client_module = importlib.import_module("addrpool_client")
    deposits = "addrpool_client.api.deposits"
    bind = importlib.import_module(f"{deposits}.bind")
    get_reference = importlib.import_module(f"{deposits}.get_reference")
    unbind = importlib.import_module(f"{deposits}.unbind")
    models = importlib.import_module("addrpool_client.models")
    client = client_module.AuthenticatedClient(base_url=base_url, token=key)

    request = models.BindRequest(
        deposit_reference="order-1", protocol=models.BindRequestProtocol.EVM
    )
    created = bind.sync_detailed(client=client, body=request)
    again = bind.sync_detailed(client=client, body=request)
    assert (created.status_code, again.status_code) == (201, 200)
    assert isinstance(created.parsed, models.BindAnswer)
    address = created.parsed.data.address
    assert again.parsed.data.address == address

    found = get_reference.sync(client=client, deposit_reference="order-1")
    assert isinstance(found, models.ReferenceAnswer)
    assert found.data.address == address and found.data.deposit_reference == "order-1"

    body = models.UnbindRequest(deposit_reference="order-1")
    unbound = unbind.sync(client=client, body=body)
    assert isinstance(unbound, models.UnbindAnswer)
    assert [u.address for u in unbound.data.unbound] == [address]

    anonymous = client_module.Client(base_url=base_url)
    refused = bind.sync(client=anonymous, body=request)
    assert isinstance(refused, models.ErrorEnvelope) and refused.error == "Unauthorized"


async def test_answers_with_deposits_match_their_documented_schemas(
    client: httpx.AsyncClient, db: Database, service_key: str
) -> None:
    """The fuzz run's pool has no deposits: check those answers against the document here."""
    doc = (await client.get("/openapi.json")).json()
    await load_pool(db, "evm", 1)
    bound = await client.post(
        "/api/v1/deposits/bind", json={"depositReference": "r1", "protocol": "evm"},
        headers=auth(service_key),
    )  # fmt: skip
    await add_deposit(db, "r1", amount=49_990_000)
    for path, template in (
        ("/api/v1/deposits", "/api/v1/deposits"),
        ("/api/v1/deposits/dep_1", "/api/v1/deposits/{deposit_id}"),
        ("/api/v1/deposits/references", "/api/v1/deposits/references"),
        ("/api/v1/deposits/references/r1", "/api/v1/deposits/references/{deposit_reference}"),
    ):
        response = await client.get(path, headers=auth(service_key))
        assert response.status_code == 200, response.text
        _assert_conforms(doc, template, "get", response)
    _assert_conforms(doc, "/api/v1/deposits/bind", "post", bound)


def _assert_conforms(doc: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    documented = doc["paths"][path][method]["responses"][str(response.status_code)]
    schema = documented["content"]["application/json"]["schema"]
    # A schema error names the field that does not match.
    jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]}).validate(
        response.json()
    )


async def test_order_answers_match_their_documented_schemas(
    orders_client: httpx.AsyncClient, db: Database, service_key: str
) -> None:
    """The fuzz run's server watches no chain, so it creates no order: checked here."""
    from tests.fixtures.orders import order_body

    doc = (await orders_client.get("/openapi.json")).json()
    await load_pool(db, "evm", 1)
    h = auth(service_key)
    body = order_body(metadata={"cart": 1}, successUrl="https://shop.example/ok")
    created = await orders_client.post("/api/v1/orders", json=body, headers=h)
    again = await orders_client.post("/api/v1/orders", json=body, headers=h)
    assert (created.status_code, again.status_code) == (201, 200)
    _assert_conforms(doc, "/api/v1/orders", "post", created)
    _assert_conforms(doc, "/api/v1/orders", "post", again)
    order_id = created.json()["data"]["orderId"]
    for path, template in (
        ("/api/v1/orders", "/api/v1/orders"),
        ("/api/v1/orders/stats", "/api/v1/orders/stats"),
        (f"/api/v1/orders/{order_id}", "/api/v1/orders/{orderId}"),
        ("/api/v1/orders/by-reference/order_1", "/api/v1/orders/by-reference/{orderReference}"),
    ):
        response = await orders_client.get(path, headers=h)
        assert response.status_code == 200, response.text
        _assert_conforms(doc, template, "get", response)
    cancelled = await orders_client.post(f"/api/v1/orders/{order_id}/cancel", headers=h)
    _assert_conforms(doc, "/api/v1/orders/{orderId}/cancel", "post", cancelled)
