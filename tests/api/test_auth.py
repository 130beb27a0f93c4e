import pytest

from pool.clock import utc_now
from pool.keys import revoke_key
from tests.helpers import auth, load_pool, make_key

BIND = "/api/v1/deposits/bind"
BODY = {"depositReference": "u1", "protocol": "evm"}


def _unauthorized(response) -> None:
    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "error": "Unauthorized",
        "code": "UNAUTHORIZED",
        "message": "Invalid API key",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer pk_test_garbage"},
        {"Authorization": "Bearer pk_test_" + "0" * 32},
        {"X-API-Key": "sk_live_whatever"},
    ],
)
async def test_missing_or_unknown_keys_are_401(client, db, headers) -> None:
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
