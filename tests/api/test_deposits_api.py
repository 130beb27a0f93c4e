import re

import httpx
from sqlalchemy import select

from pool.kit.db import Database
from pool.kit.tables import address, binding
from tests.fixtures.helpers import add_deposit, assert_error_response, auth, load_pool

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def _bind(
    client: httpx.AsyncClient, headers: dict[str, str], reference: str, protocol: str
) -> httpx.Response:
    body = {"depositReference": reference, "protocol": protocol}
    return await client.post("/api/v1/deposits/bind", json=body, headers=headers)


async def test_bind_then_bind_again(client: httpx.AsyncClient, db: Database, service_key) -> None:
    await load_pool(db, "evm", 2)
    body = {"depositReference": "player_1", "protocol": "evm", "metadata": {"playerId": 1}}
    first = await client.post("/api/v1/deposits/bind", json=body, headers=auth(service_key))
    assert first.status_code == 201, first.text
    data = first.json()["data"]
    assert first.json()["success"] is True
    assert data["depositReference"] == "player_1" and data["protocol"] == "evm"
    assert data["monitoredChains"] == ["ethereum-sepolia"]
    assert ISO_MS.fullmatch(data["createdAt"])
    assert data["metadata"] == {"playerId": 1}
    again = await client.post(
        "/api/v1/deposits/bind",
        json={**body, "metadata": {"other": True}, "chainId": "ignored"},
        headers=auth(service_key),
    )
    assert again.status_code == 200
    assert again.json()["data"] == data


async def test_exhausted_pool_is_503_insufficient_addresses(client, service_key) -> None:
    response = await client.post(
        "/api/v1/deposits/bind",
        json={"depositReference": "x", "protocol": "tron"},
        headers=auth(service_key),
    )
    assert_error_response(
        response,
        503,
        error="InsufficientAddresses",
        code="INSUFFICIENT_ADDRESSES",
        message="No available addresses in pool for protocol: tron",
    )


async def test_unbind_forms_over_http(client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 3)
    await load_pool(db, "tron", 3)
    h = auth(service_key)
    evm = (await _bind(client, h, "u", "evm")).json()["data"]
    await _bind(client, h, "u", "tron")
    by_protocol = await client.post(
        "/api/v1/deposits/unbind", json={"depositReference": "u", "protocol": "tron"}, headers=h
    )
    assert by_protocol.status_code == 200
    assert [u["protocol"] for u in by_protocol.json()["data"]["unbound"]] == ["tron"]
    by_address = await client.post(
        "/api/v1/deposits/unbind",
        json={"address": evm["address"].lower(), "protocol": "evm"},
        headers=h,
    )
    data = by_address.json()["data"]
    assert data["depositReference"] == "u"
    assert data["unbound"][0]["address"] == evm["address"]
    assert ISO_MS.fullmatch(data["unbound"][0]["cooldownUntil"])
    nothing = await client.post(
        "/api/v1/deposits/unbind", json={"depositReference": "u"}, headers=h
    )
    assert nothing.status_code == 404 and nothing.json()["error"] == "NotFound"


async def test_reference_lookup_sums_credited_deposits_exactly(
    client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 1)
    h = auth(service_key)
    bound = (await _bind(client, h, "r1", "evm")).json()["data"]
    await add_deposit(db, "r1", n=1, amount=49_990_000, decimals=6, status="confirmed")
    await add_deposit(db, "r1", n=2, amount=10**18 // 2, decimals=18, status="completed")
    await add_deposit(db, "r1", n=3, amount=7_000_000, decimals=6, status="pending")
    response = await client.get("/api/v1/deposits/references/r1", headers=h)
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["address"] == bound["address"]
    assert (data["totalDeposits"], data["totalAmount"]) == (2, "50.49")
    assert data["totals"] == {"USDC": "0.5", "USDT": "49.99"}
    assert ISO_MS.fullmatch(data["boundAt"])
    listed = (
        await client.get("/api/v1/deposits?depositReference=r1&status=confirmed", headers=h)
    ).json()["data"]
    assert [d["amount"] for d in listed["deposits"]] == ["49.99"]
    assert listed["pagination"] == {"page": 1, "limit": 20, "total": 1, "totalPages": 1}
    one = await client.get("/api/v1/deposits/dep_2", headers=h)
    assert one.json()["data"]["amount"] == "0.5" and one.json()["data"]["txHash"].startswith("0x")
    missing = await client.get("/api/v1/deposits/dep_999", headers=h)
    assert (missing.status_code, missing.json()["code"]) == (404, "DEPOSIT_NOT_FOUND")


async def test_reference_listing_paginates_and_searches(client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 5)
    h = auth(service_key)
    for ref in ("shop_a", "shop_b", "user_1"):
        await _bind(client, h, ref, "evm")
    page = (await client.get("/api/v1/deposits/references?limit=2&page=2", headers=h)).json()[
        "data"
    ]
    assert [r["depositReference"] for r in page["references"]] == ["user_1"]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2}
    found = (await client.get("/api/v1/deposits/references?search=shop_", headers=h)).json()["data"]
    assert {r["depositReference"] for r in found["references"]} == {"shop_a", "shop_b"}
    none = await client.get("/api/v1/deposits/references/nobody", headers=h)
    assert (none.status_code, none.json()["code"]) == (404, "REFERENCE_NOT_FOUND")


async def test_unattributed_rows_do_not_break_listing(client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 1)
    async with db.read() as conn:
        assert await conn.scalar(select(address.c.id)) is not None
    listed = await client.get("/api/v1/deposits", headers=auth(service_key))
    assert listed.json()["data"]["deposits"] == []


KEY = "9b" * 32
PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WORDS = PHRASE.split()


async def test_metadata_holding_a_secret_is_refused_and_nothing_bound(
    client: httpx.AsyncClient, db: Database, service_key, caplog
) -> None:
    await load_pool(db, "evm", 2)
    h = auth(service_key)
    for metadata in (
        {"note": f"customer key={KEY}"},
        {"deep": {"er": [1, {"x": f'"0x{KEY}"'}]}},
        {KEY: "as a key"},
        {"seed": WORDS},  # a phrase given as a list of words
        {"seed": " ".join(WORDS)},
    ):
        body = {"depositReference": "player_9", "protocol": "evm", "metadata": metadata}
        response = await client.post("/api/v1/deposits/bind", json=body, headers=h)
        assert response.status_code == 400, metadata
        assert response.json()["code"] == "PRIVATE_KEY_REFUSED"
        said = response.text + caplog.text
        assert KEY not in said and " ".join(WORDS[:3]) not in said and '"legal"' not in said
    found = await client.get("/api/v1/deposits/references/player_9", headers=h)
    assert found.status_code == 404
    async with db.read() as conn:
        assert (await conn.execute(select(binding.c.id))).first() is None
    words_apart = {f"field{n}": word for n, word in enumerate(WORDS)}  # 12 fields, 1 word each
    body = {"depositReference": "player_9", "protocol": "evm", "metadata": words_apart}
    assert (await client.post("/api/v1/deposits/bind", json=body, headers=h)).status_code == 201
