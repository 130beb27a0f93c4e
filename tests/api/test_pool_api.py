from datetime import datetime, timedelta

from pool.kit.clock import utc_now
from tests.fixtures.helpers import auth, load_pool


async def test_summary_availability_and_listing(client, db, admin_key) -> None:
    evm = await load_pool(db, "evm", 3)
    await load_pool(db, "tron", 2)
    h = auth(admin_key)
    await client.post(
        "/api/v1/deposits/bind", json={"depositReference": "a", "protocol": "evm"}, headers=h
    )
    await client.post(
        "/api/v1/deposits/bind", json={"depositReference": "b", "protocol": "evm"}, headers=h
    )
    await client.post("/api/v1/deposits/unbind", json={"depositReference": "b"}, headers=h)
    summary = (await client.get("/api/v1/address-pool/summary", headers=h)).json()["data"]
    # 2 binds in the last 24 h and 1 free address: gone in 12 h at that rate.
    projected = datetime.fromisoformat(summary["evm"].pop("projectedExhaustionAt"))
    assert abs(projected - (utc_now() + timedelta(hours=12))) < timedelta(minutes=1)
    assert summary["evm"] | {} == {
        "total": 3,
        "available": 1,
        "bound": 1,
        "allocated": 0,
        "coolingDown": 1,
        "archived": 0,
        "threshold": 200,
        "belowThreshold": True,
        "inUse": True,
    }
    assert summary["tron"]["available"] == 2
    assert summary["tron"]["projectedExhaustionAt"] is None  # nobody binds Tron addresses
    availability = (
        await client.get("/api/v1/address-pool/availability?protocol=tron", headers=h)
    ).json()["data"]
    assert availability["protocol"] == "tron" and availability["available"] == 2
    listing = (
        await client.get(
            "/api/v1/address-pool/addresses?protocol=evm&status=cooling_down", headers=h
        )
    ).json()["data"]
    assert [a["address"] for a in listing["addresses"]] == [evm[1]]
    assert listing["addresses"][0]["status"] == "cooling_down"
    bound = (await client.get("/api/v1/address-pool/addresses?status=bound", headers=h)).json()[
        "data"
    ]
    assert bound["addresses"][0]["depositReference"] == "a"
    bad = await client.get("/api/v1/address-pool/availability?protocol=btc", headers=h)
    assert bad.status_code == 400


async def test_archive_and_unarchive(client, db, admin_key) -> None:
    evm = await load_pool(db, "evm", 2)
    h = auth(admin_key)
    bound = (
        await client.post(
            "/api/v1/deposits/bind", json={"depositReference": "a", "protocol": "evm"}, headers=h
        )
    ).json()["data"]
    conflict = await client.patch(
        f"/api/v1/address-pool/addresses/{bound['address']}/archive", headers=h
    )
    assert (conflict.status_code, conflict.json()["code"]) == (409, "ADDRESS_BOUND")
    archived = await client.patch(
        f"/api/v1/address-pool/addresses/{evm[1].lower()}/archive", headers=h
    )
    assert archived.status_code == 200 and archived.json()["data"]["address"] == evm[1]
    refused = await client.post(
        "/api/v1/deposits/bind", json={"depositReference": "b", "protocol": "evm"}, headers=h
    )
    assert refused.status_code == 503
    await client.patch(f"/api/v1/address-pool/addresses/{evm[1]}/unarchive", headers=h)
    granted = await client.post(
        "/api/v1/deposits/bind", json={"depositReference": "b", "protocol": "evm"}, headers=h
    )
    assert granted.status_code == 201 and granted.json()["data"]["address"] == evm[1]
    unknown = await client.patch(
        "/api/v1/address-pool/addresses/0x" + "1" * 40 + "/archive", headers=h
    )
    assert unknown.status_code == 404
    invalid = await client.patch("/api/v1/address-pool/addresses/0x123/archive", headers=h)
    assert (invalid.status_code, invalid.json()["code"]) == (400, "INVALID_ADDRESS")


async def test_service_key_cannot_archive(client, db, service_key) -> None:
    evm = await load_pool(db, "evm", 1)
    response = await client.patch(
        f"/api/v1/address-pool/addresses/{evm[0]}/archive", headers=auth(service_key)
    )
    assert response.status_code == 403


async def test_a_protocol_never_imported_is_not_in_use_and_not_low(client, db, admin_key) -> None:
    """An EVM-only pool: Tron has no address at all, so it is not "below threshold" (as
    `pool_low` never fires for it); one whose addresses are all archived is in use, and low."""
    await load_pool(db, "evm", 300)  # above EVM's 200
    h = auth(admin_key)
    summary = (await client.get("/api/v1/address-pool/summary", headers=h)).json()["data"]
    assert (summary["tron"]["inUse"], summary["tron"]["belowThreshold"]) == (False, False)
    assert (summary["evm"]["inUse"], summary["evm"]["belowThreshold"]) == (True, False)
    shown = (await client.get("/api/v1/address-pool/availability?protocol=tron", headers=h)).json()
    assert (shown["data"]["inUse"], shown["data"]["belowThreshold"]) == (False, False)

    [tron] = await load_pool(db, "tron", 1)
    archived = await client.patch(f"/api/v1/address-pool/addresses/{tron}/archive", headers=h)
    assert archived.status_code == 200
    summary = (await client.get("/api/v1/address-pool/summary", headers=h)).json()["data"]
    assert summary["tron"]["archived"] == 1
    assert (summary["tron"]["inUse"], summary["tron"]["belowThreshold"]) == (True, True)
