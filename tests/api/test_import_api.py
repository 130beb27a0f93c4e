import asyncio

import pytest
from sqlalchemy import func, select

from pool.kit.tables import address, audit_log
from tests.fixtures.helpers import auth, random_addresses

EVM = random_addresses("evm", 1)[0]

URL = "/api/v1/address-pool/addresses"

# Past Python's recursion limit of 1,000, which a process importing web3 must keep (see
# chains/rpc.py): if py_ecc's 100,000 came back, this would decode instead of failing.
DEEP = "[" * 5000 + "]" * 5000


async def _pool_size(db) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(address)))


async def test_import_a_json_list_then_again(client, db, admin_key) -> None:
    evm = random_addresses("evm", 3)
    body = {
        "protocol": "evm",
        "addresses": [evm[0], {"address": evm[1], "derivationIndex": 4}, evm[2], evm[0]],
    }
    first = await client.post(URL, json=body, headers=auth(admin_key))
    assert first.status_code == 201, first.text
    data = first.json()["data"]
    assert (data["imported"], data["duplicates"], data["invalid"]) == (3, 1, [])
    assert data["batchId"]
    again = await client.post(URL, json=body, headers=auth(admin_key))
    assert again.status_code == 200 and again.json()["data"]["imported"] == 0
    assert again.json()["data"]["alreadyInPool"] == 3
    async with db.read() as conn:
        actors = (
            await conn.scalars(
                select(audit_log.c.actor).where(audit_log.c.action == "address.import")
            )
        ).all()
    assert actors and all(a.startswith("key:") for a in actors)


async def test_import_csv_text_with_skip_invalid_and_dry_run(client, db, admin_key) -> None:
    tron = random_addresses("tron", 2)
    csv = (
        "address,protocol,derivation_index,master_public_key\n"
        + f"{tron[0]},tron,,\nnope,tron,,\n{tron[1]},tron,1,\n"
    )
    refused = await client.post(URL, json={"protocol": "tron", "csv": csv}, headers=auth(admin_key))
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_ADDRESS"
    assert [d["line"] for d in refused.json()["details"]] == [3]
    dry = await client.post(
        URL,
        json={"protocol": "tron", "csv": csv, "skipInvalid": True, "dryRun": True},
        headers=auth(admin_key),
    )
    assert dry.status_code == 200 and dry.json()["data"]["imported"] == 2
    assert await _pool_size(db) == 0
    done = await client.post(
        URL, json={"protocol": "tron", "csv": csv, "skipInvalid": True}, headers=auth(admin_key)
    )
    assert done.status_code == 201 and done.json()["data"]["imported"] == 2
    assert await _pool_size(db) == 2


async def test_private_keys_are_refused_and_never_echoed(client, db, admin_key, caplog) -> None:
    secret = "e" * 64
    body = {
        "protocol": "evm",
        "addresses": [random_addresses("evm", 1)[0], secret],
        "skipInvalid": True,
    }
    response = await client.post(URL, json=body, headers=auth(admin_key))
    assert response.status_code == 400 and response.json()["code"] == "PRIVATE_KEY_REFUSED"
    assert "never takes private keys" in response.json()["message"]
    assert secret not in response.text and secret not in caplog.text
    assert await _pool_size(db) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"protocol": "evm"}, "VALIDATION_FAILED"),
        ({"protocol": "evm", "addresses": [], "csv": ""}, "VALIDATION_FAILED"),
        ({"protocol": "btc", "addresses": []}, "UNSUPPORTED_PROTOCOL"),
        ({"protocol": "evm", "addresses": "0xabc"}, "VALIDATION_FAILED"),
        # JSON in the text: a lone surrogate once came back quoted in an error no encoder
        # could write (500), deep nesting overflowed the decoder's recursion (500).
        ({"protocol": "evm", "csv": '["\\ud800"]'}, "INVALID_JSON"),
        ({"protocol": "evm", "csv": '[{"address": "0x\\udc00"}]'}, "INVALID_JSON"),
        ({"protocol": "evm", "csv": DEEP}, "INVALID_JSON"),
        # A derivation index int() cannot read (ValueError, a 500 before).
        ({"protocol": "evm", "csv": f"{EVM},{'9' * 5000}"}, "INVALID_ADDRESS"),
        ({"protocol": "evm", "csv": f"{EVM},\u00b2"}, "INVALID_ADDRESS"),
        # A field over the csv module's 131,072-character limit (csv.Error, a 500 before).
        ({"protocol": "evm", "csv": f'{EVM},1\n"{"a" * 140_000}",2'}, "INVALID_ADDRESS"),
        ({"protocol": "evm", "csv": f'"{"a" * 140_000}",1\n{EVM},2'}, "VALIDATION_FAILED"),
    ],
)
async def test_bad_import_bodies(client, admin_key, body, code) -> None:
    response = await client.post(URL, json=body, headers=auth(admin_key))
    assert response.status_code == 400 and response.json()["code"] == code


async def test_import_needs_pool_write(client, service_key) -> None:
    response = await client.post(
        URL, json={"protocol": "evm", "addresses": []}, headers=auth(service_key)
    )
    assert response.status_code == 403


async def test_import_body_may_exceed_the_general_body_limit(client, admin_key) -> None:
    addresses = random_addresses("evm", 30_000)  # ~1.3 MB of JSON, over the 1 MB default
    response = await client.post(
        URL, json={"protocol": "evm", "addresses": addresses}, headers=auth(admin_key)
    )
    assert response.status_code == 201 and response.json()["data"]["imported"] == 30_000


async def test_other_requests_are_served_while_a_large_import_runs(client, admin_key) -> None:
    addresses = random_addresses("evm", 60_000)
    body = {"protocol": "evm", "addresses": addresses, "dryRun": True}
    import_task = asyncio.create_task(client.post(URL, json=body, headers=auth(admin_key)))
    served_meanwhile = 0
    while not import_task.done():
        health = await client.get("/health")
        assert health.status_code == 200
        served_meanwhile += 1
    assert (await import_task).status_code == 200
    assert served_meanwhile >= 3


XPUB_URL = "/api/v1/address-pool/xpub"
V1_M_0H = "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw"


async def test_import_from_xpub_over_the_api(client, db, admin_key) -> None:
    from chains.hd import derive_addresses, parse_extended_public_key

    body = {"protocol": "tron", "xpub": V1_M_0H, "start": 5, "count": 10}
    first = await client.post(XPUB_URL, json=body, headers=auth(admin_key))
    assert first.status_code == 201 and first.json()["data"]["imported"] == 10
    again = await client.post(XPUB_URL, json=body, headers=auth(admin_key))
    assert again.status_code == 200 and again.json()["data"]["alreadyInPool"] == 10
    expected = derive_addresses(
        parse_extended_public_key(V1_M_0H), protocol="tron", branch=0, start=5, count=1
    )
    async with db.read() as conn:
        index = await conn.scalar(
            select(address.c.derivation_index).where(address.c.address == expected[0][1].text)
        )
    assert index == 5


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"protocol": "evm", "xpub": "f" * 64, "count": 1}, 400, "PRIVATE_KEY_REFUSED"),
        ({"protocol": "evm", "xpub": V1_M_0H, "count": 0}, 400, "VALIDATION_FAILED"),
        ({"protocol": "evm", "xpub": "xpub-not-really", "count": 1}, 400, "VALIDATION_FAILED"),
    ],
)
async def test_bad_xpub_imports(client, admin_key, body, status, code) -> None:
    response = await client.post(XPUB_URL, json=body, headers=auth(admin_key))
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert "f" * 64 not in response.text


KEY = "7c" * 32
WIF = "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617"
XPRV = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WORDS = PHRASE.split()


def _secret_bodies() -> list[dict]:
    a, b = random_addresses("evm", 2)
    return [
        {"addresses": [a, {"address": b, "note": XPRV}]},  # an unknown field of a row
        {"addresses": [a, f"{b} {KEY}"]},
        {"addresses": [a, *WORDS]},  # one word per row
        {"csv": f"address,derivation_index\n{a},0\n{b},1,{KEY}\n"},  # a 5th column
        {"csv": f'{a}\n"{" ".join(WORDS)}"\n'},
        {"addresses": [a], "memo": f"wif={WIF}"},  # an unknown field of the request
        {"addresses": [a], "protocol": f"evm {KEY}"},  # refused before the protocol is checked
    ]


@pytest.mark.parametrize("case", range(7))
async def test_a_secret_anywhere_in_an_import_request_is_refused(
    client, db, admin_key, caplog, case
) -> None:
    body = {"protocol": "evm", "skipInvalid": True, **_secret_bodies()[case]}
    response = await client.post(URL, json=body, headers=auth(admin_key))
    assert response.status_code == 400 and response.json()["code"] == "PRIVATE_KEY_REFUSED"
    said = response.text + caplog.text
    assert KEY not in said and WIF not in said and XPRV[:20] not in said
    assert " ".join(WORDS[:3]) not in said and '"legal","winner"' not in said
    assert {d["value"] for d in response.json()["details"]} == {"[redacted]"}
    assert await _pool_size(db) == 0


async def test_secrets_are_located_by_row_line_or_field(client, admin_key) -> None:
    a = random_addresses("evm", 1)[0]
    body = {"protocol": "evm", "addresses": [a, a, {"address": a, KEY: 1}], "note": XPRV}
    response = await client.post(URL, json=body, headers=auth(admin_key))
    error = response.json()
    assert [(d.get("line"), d.get("field"), d["kind"]) for d in error["details"]] == [
        (3, None, "raw_private_key"),
        (None, "note", "extended_private_key"),
    ]
    assert error["detailsCount"] == 2 and error["detailsByKind"] == {
        "raw_private_key": 1,
        "extended_private_key": 1,
    }


async def test_a_broken_request_holding_a_key_is_refused_as_a_key(client, admin_key) -> None:
    raw = b'{"protocol": "evm", "addresses": ["' + KEY.encode() + b'",]}'
    response = await client.post(
        URL, content=raw, headers={**auth(admin_key), "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["code"] == "PRIVATE_KEY_REFUSED"
    assert KEY not in response.text


async def test_error_reports_are_bounded_whatever_the_request_size(client, db, admin_key) -> None:
    bad = [f"0x{n:038x}zz" for n in range(20_000)]  # ~1 MB of bad rows
    body = {"protocol": "evm", "addresses": bad}
    refused = await client.post(URL, json=body, headers=auth(admin_key))
    error = refused.json()
    assert refused.status_code == 400 and len(refused.content) < 40_000
    assert len(error["details"]) == 100 and error["detailsCount"] == 20_000
    assert error["detailsByKind"] == {"invalid_address": 20_000}
    skipped = await client.post(
        URL, json={**body, "skipInvalid": True, "dryRun": True}, headers=auth(admin_key)
    )
    data = skipped.json()["data"]
    assert len(skipped.content) < 40_000 and len(data["invalid"]) == 100
    assert (data["invalidCount"], data["invalidByKind"]) == (20_000, {"invalid_address": 20_000})


@pytest.mark.parametrize(
    "extra",
    [{"xpub": f"key {XPRV}"}, {"xpub": V1_M_0H, "label": f'"{" ".join(WORDS)}"'}],
)
async def test_a_secret_anywhere_in_an_xpub_request_is_refused(
    client, db, admin_key, extra
) -> None:
    body = {"protocol": "evm", "count": 3, **extra}
    response = await client.post(XPUB_URL, json=body, headers=auth(admin_key))
    assert response.status_code == 400 and response.json()["code"] == "PRIVATE_KEY_REFUSED"
    assert XPRV[:20] not in response.text and " ".join(WORDS[:3]) not in response.text
    assert await _pool_size(db) == 0
