"""NUL and lone surrogates, anywhere a request carries text: 400 naming the field, both databases.

PostgreSQL cannot store NUL and no UTF-8 encoder takes a lone surrogate; both used to end as a
500 (NUL on PostgreSQL only, surrogates on both). Each case must answer the same envelope on
SQLite and PostgreSQL and leave the database as it was.
"""

import pytest
from sqlalchemy import func, select

from pool.kit.db import Database
from pool.kit.tables import binding, event, webhook_endpoint
from tests.fixtures.helpers import (
    assert_error_response,
    auth,
    chunked_over_the_limit,
    load_pool,
)

BIND = "/api/v1/deposits/bind"
ENDPOINTS = "/api/v1/webhooks/endpoints"
IMPORT = "/api/v1/address-pool/addresses"
XPUB = "/api/v1/address-pool/xpub"
JSON = {"Content-Type": "application/json"}
NUL = "may not contain a NUL character (U+0000)"
SURROGATE = "may not contain a lone surrogate (U+D800 to U+DFFF): it is not valid Unicode"


def _bind_body(metadata: bytes) -> bytes:
    return b'{"depositReference": "ref-1", "protocol": "evm", "metadata": ' + metadata + b"}"


def _endpoint_body(
    url: bytes = b"http://127.0.0.1:9/h", event: bytes = b"deposit.confirmed"
) -> bytes:
    return b'{"url": "' + url + b'", "events": ["' + event + b'"]'


def _import_body(fields: bytes) -> bytes:
    return b'{"protocol": "evm", ' + fields + b"}"


# (method, path, raw JSON body or None, the field named, the reason)
BAD_REQUESTS = [
    ("POST", BIND, _bind_body(b'{"\\ud800": 1}'), "metadata", "a key " + SURROGATE),
    ("POST", BIND, _bind_body(b'{"k": "\\ud800"}'), "metadata.k", SURROGATE),
    ("POST", BIND, _bind_body(b'{"k": "x\\uDC00y"}'), "metadata.k", SURROGATE),
    ("POST", BIND, _bind_body(b'{"k": "a\\u0000b"}'), "metadata.k", NUL),
    ("POST", BIND, _bind_body(b'{"\\u0000": 1}'), "metadata", "a key " + NUL),
    ("POST", BIND, _bind_body(b'{"a": [{"b": "\\u0000"}]}'), "metadata.a.0.b", NUL),
    # A surrogate written as raw UTF-8 bytes: Python's JSON decoder lets it through.
    ("POST", BIND, _bind_body(b'{"k": "\xed\xa0\x80"}'), "metadata.k", SURROGATE),
    ("POST", BIND, b'{"depositReference": "\\u0000", "protocol": "evm"}', "depositReference", NUL),
    ("POST", BIND, b'{"depositReference": "r", "extra\\u0000": 1}', "body", "a key " + NUL),
    ("GET", "/api/v1/deposits?currency=a%00b", None, "currency", NUL),
    ("GET", "/api/v1/deposits?depositReference=%00", None, "depositReference", NUL),
    ("GET", "/api/v1/deposits?chainId=x&address=0x%00", None, "address", NUL),
    ("GET", "/api/v1/deposits/references?search=a%00", None, "search", NUL),
    ("GET", "/api/v1/deposits/dep_%00", None, "path", NUL),
    ("GET", "/api/v1/deposits/references/ref%00", None, "path", NUL),
    ("GET", "/api/v1/webhooks/endpoints/we_%00", None, "path", NUL),
    ("DELETE", "/api/v1/webhooks/endpoints/we_%00", None, "path", NUL),
    ("POST", "/api/v1/webhooks/deliveries/dl_%00/retry", None, "path", NUL),
    ("PATCH", "/api/v1/address-pool/addresses/0x%00/archive", None, "path", NUL),
    ("GET", "/api/v1/webhooks/deliveries?eventType=%00", None, "eventType", NUL),
    ("GET", "/api/v1/webhooks/deliveries?endpointId=we_%00", None, "endpointId", NUL),
    ("GET", "/api/v1/reconciliation/totals?chainId=a%00", None, "chainId", NUL),
    ("GET", "/api/v1/reconciliation/totals?since=1d%00", None, "since", NUL),
    ("GET", "/api/v1/deposits?%00=1", None, "query parameter name", NUL),
    ("POST", ENDPOINTS, _endpoint_body() + b', "description": "a\\u0000b"}', "description", NUL),
    ("POST", ENDPOINTS, _endpoint_body(url=b"http://127.0.0.1:9/h\\u0000") + b"}", "url", NUL),
    ("POST", ENDPOINTS, _endpoint_body(event=b"deposit.\\ud83d") + b"}", "events.0", SURROGATE),
    ("PATCH", ENDPOINTS + "/we_1", b'{"description": "\\u0000"}', "description", NUL),
    ("POST", IMPORT, _import_body(b'"csv": "address\\n0x\\u0000"'), "csv", NUL),
    ("POST", IMPORT, _import_body(b'"addresses": ["0x1", "\\ud800"]'), "addresses.1", SURROGATE),
    (
        "POST",
        IMPORT,
        _import_body(b'"addresses": [{"address": "\\u0000"}]'),
        "addresses.0.address",
        NUL,
    ),
    ("POST", XPUB, _import_body(b'"xpub": "xpub\\u0000", "count": 1'), "xpub", NUL),
]


async def _rows(db: Database) -> tuple[int, int, int]:
    async with db.read() as conn:
        counts = [
            await conn.scalar(select(func.count()).select_from(table))
            for table in (binding, event, webhook_endpoint)
        ]
    return int(counts[0]), int(counts[1]), int(counts[2])


def _assert_refused(response, field: str, reason: str) -> None:
    assert_error_response(
        response,
        400,
        error="ValidationError",
        code="VALIDATION_FAILED",
        message=f"{field}: {reason}",
        details=[{"field": field, "message": reason}],
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "reason"),
    BAD_REQUESTS,
    ids=[f"{n}-{method}-{field}" for n, (method, _, _, field, _) in enumerate(BAD_REQUESTS)],
)
async def test_unstorable_text_is_400_naming_the_field_and_writes_nothing(
    client, db, admin_key, method, path, body, field, reason
) -> None:
    await load_pool(db, "evm", 1)
    headers = {**auth(admin_key), **JSON}
    response = await client.request(method, path, content=body, headers=headers)
    _assert_refused(response, field, reason)
    assert await _rows(db) == (0, 0, 0)


RAW_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
MNEMONIC_KEYS = "abandon." * 11 + "about"
SECRET_FIELDS = [  # a refusal names its field, and these names hold secrets: never echoed
    ("POST", BIND, _bind_body(b'{"' + RAW_KEY.encode() + b'": "\\u0000"}')),
    ("POST", BIND, _bind_body(b'{"a": {"0x' + RAW_KEY.encode() + b'": ["\\ud800"]}}')),
    ("POST", IMPORT, _import_body(b'"' + MNEMONIC_KEYS.encode() + b'": {"x": "\\u0000"}')),
    ("GET", f"/api/v1/deposits?{RAW_KEY}=%00", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SECRET_FIELDS)
async def test_a_field_named_by_a_secret_is_redacted_in_the_refusal(
    client, db, admin_key, method, path, body
) -> None:
    await load_pool(db, "evm", 1)
    headers = {**auth(admin_key), **JSON}
    response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == "[redacted]"
    assert RAW_KEY not in response.text and "abandon" not in response.text
    assert await _rows(db) == (0, 0, 0)


async def test_a_body_in_utf16_is_checked_too(client, db, admin_key) -> None:
    """Python's JSON decoder reads UTF-16 and UTF-32 bodies: their NUL bytes start the check."""
    body = (_endpoint_body() + b', "description": "\\u0000"}').decode().encode("utf-16")
    headers = {**auth(admin_key), **JSON}
    response = await client.post(ENDPOINTS, content=body, headers=headers)
    _assert_refused(response, "description", NUL)
    assert await _rows(db) == (0, 0, 0)


async def test_a_nul_in_a_header_is_400(client, admin_key) -> None:
    headers = {**auth(admin_key), "X-Request-Note": "a\x00b"}
    response = await client.get("/api/v1/deposits", headers=headers)
    _assert_refused(response, "x-request-note", NUL)


async def test_a_nul_in_the_api_key_is_400_before_any_lookup(client) -> None:
    response = await client.get("/api/v1/deposits", headers={"X-API-Key": "pk_test_\x00"})
    _assert_refused(response, "x-api-key", NUL)


async def test_text_that_only_looks_unstorable_is_stored_as_sent(client, db, admin_key) -> None:
    """An emoji as a surrogate pair, an escaped backslash before `u0000`, a non-ASCII escape."""
    await load_pool(db, "evm", 1)
    metadata = b'{"emoji": "\\ud83d\\ude00", "text": "\\\\u0000 \\\\ud800", "name": "Jos\\u00e9"}'
    response = await client.post(
        BIND, content=_bind_body(metadata), headers={**auth(admin_key), **JSON}
    )
    assert response.status_code == 201, response.text
    expected = {"emoji": "\U0001f600", "text": "\\u0000 \\ud800", "name": "José"}
    assert response.json()["data"]["metadata"] == expected
    stored = await client.get("/api/v1/deposits/references/ref-1", headers=auth(admin_key))
    assert stored.json()["data"]["metadata"] == expected


async def test_the_size_limit_still_comes_first(client, admin_key) -> None:
    """A chunked body (no Content-Length) over the limit: 413 while the guard buffers it."""
    head = b'{"depositReference": "a", "metadata": {"k": "\\u0000'
    chunks = chunked_over_the_limit(head, b'"}}')
    response = await client.post(BIND, content=chunks, headers=auth(admin_key))
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
