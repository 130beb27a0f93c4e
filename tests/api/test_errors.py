"""Every malformed request gets the envelope with the right status, and changes nothing."""

import pytest
from sqlalchemy import func, select

from pool.kit.db import Database
from pool.kit.tables import binding, event
from tests.fixtures.helpers import auth, chunked_over_the_limit, load_pool

BIND = "/api/v1/deposits/bind"


async def _rows(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        bindings = await conn.scalar(select(func.count()).select_from(binding))
        events = await conn.scalar(select(func.count()).select_from(event))
    return int(bindings), int(events)


def _assert_envelope(response, status: int, error: str, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"] == error and body["message"]
    assert set(body) <= {"success", "error", "code", "message", "details"}
    if code:
        assert body["code"] == code
    return body


BAD_BODIES = [
    (b"{not json", "INVALID_JSON"),
    (
        b'{"depositReference": "a", "protocol": "evm", "metadata": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}",
        "INVALID_JSON",
    ),
    (b'{"depositReference": "\xff\xfe\xfd", "protocol": "evm"}', "INVALID_JSON"),
    (
        b'{"depositReference": "a", "protocol": "evm", "metadata": {"n": ' + b"9" * 5000 + b"}}",
        "INVALID_JSON",
    ),
    (b"", "VALIDATION_FAILED"),
    (b"[]", "VALIDATION_FAILED"),
    (b'"text"', "VALIDATION_FAILED"),
    (b"{}", "VALIDATION_FAILED"),
    (b'{"depositReference": 12, "protocol": "evm"}', "VALIDATION_FAILED"),
    (b'{"depositReference": "a", "protocol": "solana"}', "UNSUPPORTED_PROTOCOL"),
    (b'{"depositReference": "a", "protocol": null}', "UNSUPPORTED_PROTOCOL"),
    (b'{"depositReference": "", "protocol": "evm"}', "VALIDATION_FAILED"),
    (b'{"depositReference": "has space", "protocol": "evm"}', "VALIDATION_FAILED"),
    (b'{"depositReference": "emoji\\ud83d\\ude00", "protocol": "evm"}', "VALIDATION_FAILED"),
    (b'{"depositReference": "' + b"a" * 256 + b'", "protocol": "evm"}', "VALIDATION_FAILED"),
    (b'{"depositReference": "a", "protocol": "evm", "metadata": [1]}', "VALIDATION_FAILED"),
    (b'{"depositReference": "a", "protocol": "evm", "metadata": "x"}', "VALIDATION_FAILED"),
    (b'{"depositReference": "a", "protocol": "evm", "metadata": {"n": NaN}}', "VALIDATION_FAILED"),
    (
        b'{"depositReference": "a", "protocol": "evm", "metadata": {"n": Infinity}}',
        "VALIDATION_FAILED",
    ),
    (
        b'{"depositReference": "a", "protocol": "evm", "metadata": {"n": 9007199254740993}}',
        "VALIDATION_FAILED",
    ),
    (
        b'{"depositReference": "a", "protocol": "evm", "metadata": {"b": "' + b"x" * 5000 + b'"}}',
        "VALIDATION_FAILED",
    ),
]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
async def test_bad_bind_bodies_are_400_and_write_nothing(
    client, db, service_key, body, code
) -> None:
    await load_pool(db, "evm", 1)
    headers = {**auth(service_key), "Content-Type": "application/json"}
    response = await client.post(BIND, content=body, headers=headers)
    _assert_envelope(response, 400, "ValidationError", code)
    assert await _rows(db) == (0, 0)


async def test_missing_fields_are_named(client, service_key) -> None:
    response = await client.post(BIND, json={}, headers=auth(service_key))
    body = _assert_envelope(response, 400, "ValidationError")
    assert body["message"] == "Required fields: depositReference, protocol"
    assert {d["field"] for d in body["details"]} == {"depositReference", "protocol"}


async def test_huge_body_is_413(client, db, service_key) -> None:
    huge = b'{"depositReference": "a", "protocol": "evm", "pad": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post(BIND, content=huge, headers=auth(service_key))
    _assert_envelope(response, 413, "PayloadTooLarge", "PAYLOAD_TOO_LARGE")


async def test_huge_chunked_body_is_413(client, service_key) -> None:
    chunks = chunked_over_the_limit(b'{"depositReference": "a", "pad": "', b'"}')
    response = await client.post(BIND, content=chunks, headers=auth(service_key))
    _assert_envelope(response, 413, "PayloadTooLarge")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing", "/api/v1/deposits/references/a/b", "/nope"],
)
async def test_unknown_routes_are_404_envelopes(client, service_key, path) -> None:
    _assert_envelope(await client.get(path, headers=auth(service_key)), 404, "NotFound")


async def test_wrong_method_is_405_envelope(client, service_key) -> None:
    _assert_envelope(await client.delete(BIND, headers=auth(service_key)), 405, "MethodNotAllowed")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        # GET, PATCH and DELETE are three routes of one path: all three are named, and HEAD,
        # answered wherever GET is (api/head_requests.py).
        ("PUT", "/api/v1/webhooks/endpoints/we_1", "DELETE, GET, HEAD, PATCH"),
        ("DELETE", "/api/v1/webhooks/endpoints", "GET, HEAD, POST"),
        ("POST", "/health", "GET, HEAD"),
    ],
)
async def test_405_names_every_method_the_path_accepts(
    client, service_key, method, path, allowed
) -> None:
    response = await client.request(method, path, headers=auth(service_key))
    body = _assert_envelope(response, 405, "MethodNotAllowed", "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == allowed
    assert allowed in body["message"]


@pytest.mark.parametrize(
    "query",
    [
        "since=999999999d",
        "since=99999999999999999999999999m",
        "since=0001-01-01T00:00:00%2B01:00",
        "since=2026-01-01&until=9999-12-31T23:59:59-14:00",
    ],
)
async def test_moments_outside_the_calendar_are_400(client, admin_key, query) -> None:
    response = await client.get(f"/api/v1/reconciliation/totals?{query}", headers=auth(admin_key))
    body = _assert_envelope(response, 400, "ValidationError", "VALIDATION_FAILED")
    assert "outside the years 1 to 9999" in body["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/deposits/"),
        ("GET", "/api/v1/alerts/"),
        ("GET", "/api/v1/address-pool/summary/"),
        ("POST", "/api/v1/deposits/bind/"),
        ("GET", "/health/"),
    ],
)
async def test_a_trailing_slash_is_a_404_envelope_not_a_redirect(
    client, service_key, method, path
) -> None:
    response = await client.request(method, path, headers=auth(service_key), json={})
    _assert_envelope(response, 404, "NotFound", "NOT_FOUND")
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "page=0", "page=abc", "status=lost", "limit=1e3"],
)
async def test_bad_query_parameters_are_400(client, service_key, query) -> None:
    response = await client.get(f"/api/v1/deposits?{query}", headers=auth(service_key))
    _assert_envelope(response, 400, "ValidationError")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"protocol": "evm"},
        {"address": "0x" + "1" * 40},
        {"address": "not-an-address", "protocol": "evm"},
        {"depositReference": "bad ref"},
    ],
)
async def test_bad_unbind_bodies_are_400(client, service_key, body) -> None:
    response = await client.post("/api/v1/deposits/unbind", json=body, headers=auth(service_key))
    _assert_envelope(response, 400, "ValidationError")


async def test_odd_reference_in_the_path_is_400(client, service_key) -> None:
    response = await client.get("/api/v1/deposits/references/a%20b", headers=auth(service_key))
    _assert_envelope(response, 400, "ValidationError")


async def test_unexpected_failure_is_a_500_envelope_without_internals(
    client, db, service_key, monkeypatch
) -> None:
    from pool.bindings import service as allocation

    async def explode(*_args, **_kwargs):
        raise RuntimeError("SELECT secret FROM somewhere")

    monkeypatch.setattr(allocation, "bind", explode)
    response = await client.post(
        BIND, json={"depositReference": "a", "protocol": "evm"}, headers=auth(service_key)
    )
    body = _assert_envelope(response, 500, "InternalError", "INTERNAL_ERROR")
    assert "SELECT" not in response.text and "Traceback" not in response.text
    assert body["message"] == "Internal server error"
