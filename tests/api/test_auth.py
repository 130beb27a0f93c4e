import pytest

from pool.keys.service import revoke_key
from pool.kit.clock import utc_now
from pool.kit.errors import Unauthorized
from tests.fixtures.helpers import assert_error_response, auth, load_pool, make_key

BIND = "/api/v1/deposits/bind"
BODY = {"depositReference": "u1", "protocol": "evm"}


def _unauthorized(response) -> None:
    assert_error_response(
        response, 401, error="Unauthorized", code="UNAUTHORIZED", message="Invalid API key"
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"),
        ({"X-API-Key": " "}, "Missing API key: send 'Authorization: Bearer <key>' or"),
        ({"Authorization": "Bearer"}, "Missing API key: the Authorization header must be"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Missing API key: the Authorization header"),
    ],
)
async def test_a_request_without_a_key_is_told_the_key_is_missing(
    client, db, headers, message
) -> None:
    await load_pool(db, "evm", 1)
    response = await client.post(BIND, json=BODY, headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    assert response.json()["message"].startswith(message)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer pk_test_garbage"},
        {"Authorization": "Bearer pk_test_" + "0" * 32},
        {"X-API-Key": "sk_live_whatever"},
    ],
)
async def test_unknown_keys_are_401(client, db, headers) -> None:
    await load_pool(db, "evm", 1)
    _unauthorized(await client.post(BIND, json=BODY, headers=headers))


async def test_both_header_forms_work(client, db, service_key) -> None:
    await load_pool(db, "evm", 1)
    bearer = await client.post(BIND, json=BODY, headers=auth(service_key))
    x_api_key = await client.post(BIND, json=BODY, headers={"X-API-Key": service_key})
    assert (bearer.status_code, x_api_key.status_code) == (201, 200)


async def test_scopes_are_enforced(client, db) -> None:
    reader = await make_key(db, scopes=["deposits:read"])
    pool_reader = await make_key(db, scopes=["pool:read"])
    forbidden = await client.post(BIND, json=BODY, headers=auth(reader))
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "Forbidden"
    assert forbidden.json()["message"] == (
        "This API key lacks the deposits:write scope; an operator can create a key with it: "
        "addrpool keys create --name NAME --scopes deposits:write"
    )
    assert (await client.get("/api/v1/deposits", headers=auth(reader))).status_code == 200
    assert (await client.get("/api/v1/deposits", headers=auth(pool_reader))).status_code == 403
    summary = await client.get("/api/v1/address-pool/summary", headers=auth(pool_reader))
    assert summary.status_code == 200
    assert (
        await client.get("/api/v1/address-pool/summary", headers=auth(reader))
    ).status_code == 403


async def test_revoked_key_is_refused(client, db, service_key) -> None:
    assert (await client.get("/api/v1/deposits", headers=auth(service_key))).status_code == 200
    async with db.write() as conn:
        await revoke_key(conn, id_or_prefix=service_key[:12], actor="t", now=utc_now())
    client._transport.app.state.key_cache.forget_all()  # other processes wait out the TTL
    _unauthorized(await client.get("/api/v1/deposits", headers=auth(service_key)))


@pytest.fixture
async def mainnet_client(settings, db):
    """The same database served by a mainnet instance."""
    import httpx

    from api.app import create_app

    app = create_app(settings.model_copy(update={"network": "mainnet"}), db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        yield http
    await app.state.ctx.pool_alerts.close()


def _other_network(response, prefix: str, belongs_to: str, running: str) -> None:
    assert_error_response(
        response,
        401,
        error="Unauthorized",
        code="UNAUTHORIZED",
        message=f"Invalid API key: {prefix} keys belong to {belongs_to}; this server runs on "
        f"{running} ({'pk_test_' if running == 'testnet' else 'pk_live_'} keys)",
    )


async def test_a_key_of_the_other_network_is_401_whether_or_not_it_exists(
    client, mainnet_client, db
) -> None:
    await load_pool(db, "evm", 2)
    live = await make_key(db, scopes=["admin"], prefix="pk_live_")
    test = await make_key(db, scopes=["admin"], prefix="pk_test_")
    unknown_live, unknown_test = "pk_live_" + "0" * 32, "pk_test_" + "0" * 32
    for key in (live, unknown_live):
        _other_network(
            await client.post(BIND, json=BODY, headers=auth(key)), "pk_live_", "mainnet", "testnet"
        )
    for key in (test, unknown_test):
        refused = await mainnet_client.post(BIND, json=BODY, headers={"X-API-Key": key})
        _other_network(refused, "pk_test_", "testnet", "mainnet")
    # Each still works where it belongs.
    assert (await client.post(BIND, json=BODY, headers=auth(test))).status_code == 201
    assert (await mainnet_client.get("/api/v1/deposits", headers=auth(live))).status_code == 200


async def test_the_key_cache_cannot_let_a_key_of_the_other_network_through(client, db) -> None:
    """Even a live key sitting in a testnet process's cache is refused: the prefix is checked
    before the cache and before the database."""
    import time

    from api.auth import KeyCache
    from pool.keys import service as keys
    from pool.keys.repository import ApiKey

    live = await make_key(db, scopes=["admin"], prefix="pk_live_")
    cache: KeyCache = client._transport.app.state.key_cache
    record = ApiKey(1, "planted", live[:12], frozenset({"admin"}), utc_now(), utc_now(), None)
    cache._entries[keys.hash_key(live)] = (record, time.monotonic())
    _other_network(
        await client.get("/api/v1/deposits", headers=auth(live)), "pk_live_", "mainnet", "testnet"
    )

    class NoDatabase:
        def read(self):
            raise AssertionError("a key of the other network reached the database")

    with pytest.raises(Unauthorized, match="belong to mainnet"):
        await KeyCache(NoDatabase(), network="testnet", ttl_seconds=5).verify(live)
