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
import pytest

from api.app import create_app
from pool.kit.config import Settings
from pool.kit.db import Database
from scripts.bench.fuzz import prepare
from tests.api.conformance import assert_conforms
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
    assert len(keyed) == 46
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


RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
# Answers sent only once the key was counted (api/openapi.py, COUNTED).
CERTAIN = {"200", "201", "202", "403", "409", "429", "502"}


def test_keyed_answers_declare_the_rate_limit_headers() -> None:
    doc = document()
    headers = doc["components"]["headers"]
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            declared = response.get("headers", {})
            if not path.startswith("/api/v1/") or status == "401":
                assert not set(RATE_LIMIT_HEADERS) & set(declared), (method, path, status)
                continue
            for name in RATE_LIMIT_HEADERS:
                header = headers[declared[name]["$ref"].rsplit("/", 1)[1]]
                assert header["required"] is (status in CERTAIN), (method, path, status, name)
                assert header["schema"]["type"] == "integer"
            if status == "429":
                retry = headers[declared["Retry-After"]["$ref"].rsplit("/", 1)[1]]
                assert retry["required"] is True and retry["schema"]["minimum"] == 1


def test_success_data_is_typed_all_the_way_down() -> None:
    """No object without declared properties below a success envelope's `data`, except the
    user's own JSON (`metadata`) and per-kind details; maps are typed (`additionalProperties`
    is a schema)."""
    doc = document()
    schemas = doc["components"]["schemas"]
    free_form = {"metadata", "details"}
    loose: list[str] = []

    def walk(schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                walk(schemas[name], name)
            return
        for option in schema.get("anyOf", []):
            walk(option, where)
        if schema.get("type") == "object":
            properties = schema.get("properties", {})
            mapped = schema.get("additionalProperties")
            untyped = not properties and not isinstance(mapped, dict)
            if untyped and where.rsplit(".", 1)[-1] not in free_form:
                loose.append(where)
            for name, value in properties.items():
                walk(value, f"{where}.{name}")
            if isinstance(mapped, dict):
                walk(mapped, f"{where}.*")
        if schema.get("type") == "array":
            walk(schema["items"], f"{where}[]")

    seen: set[str] = set()
    answers = [n for n in schemas if n.endswith("Answer")]
    assert len(answers) >= 25
    for name in answers:
        walk(schemas[name]["properties"]["data"], f"{name}.data")
    assert loose == []


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
        assert_conforms(doc, "get", template, response)
    assert_conforms(doc, "post", "/api/v1/deposits/bind", bound)
