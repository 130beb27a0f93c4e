"""`POST /deposits/{id}/attribute` and `/resolve` over HTTP: the scope, the answers and their
codes (the decisions themselves: tests/pool/deposits/test_resolution.py)."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update

from pool.kit.db import Database
from pool.kit.tables import audit_log, deposit
from tests.fixtures.helpers import add_deposit, auth, load_pool, make_key

ATTRIBUTE = "/api/v1/deposits/{}/attribute"
RESOLVE = "/api/v1/deposits/{}/resolve"


async def _nobodys_deposits(client: httpx.AsyncClient, db: Database, key: str) -> None:
    """dep_1 and dep_2, confirmed, to an address nobody holds; `r1` and `r2` bound."""
    await load_pool(db, "evm", 3)
    for reference in ("r1", "r2", "holder"):
        body = {"depositReference": reference, "protocol": "evm"}
        bound = await client.post("/api/v1/deposits/bind", json=body, headers=auth(key))
        assert bound.status_code == 201, bound.text
    await add_deposit(db, "holder", n=1)
    await add_deposit(db, "holder", n=2)
    async with db.write() as conn:
        await conn.execute(update(deposit).values(binding_id=None))


async def test_console_write_attributes_and_the_answer_is_the_deposit(
    client: httpx.AsyncClient, db: Database, admin_key: str
) -> None:
    await _nobodys_deposits(client, db, admin_key)
    operator = await make_key(db, scopes=["console:write"])
    body = {"depositReference": "r1", "reason": "ticket 12"}

    first = await client.post(ATTRIBUTE.format("dep_1"), json=body, headers=auth(operator))

    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["message"] == "Deposit attributed"
    data = answer["data"]
    assert (data["depositId"], data["depositReference"]) == ("dep_1", "r1")
    assert data["resolution"]["outcome"] == "attributed"
    assert data["resolution"]["note"] == "ticket 12"
    again = await client.post(ATTRIBUTE.format("dep_1"), json=body, headers=auth(operator))
    assert again.status_code == 200
    assert again.json()["message"] == "Deposit already attributed to it"
    elsewhere = {"depositReference": "r2", "reason": "no, r2"}
    refused = await client.post(ATTRIBUTE.format("dep_1"), json=elsewhere, headers=auth(operator))
    assert (refused.status_code, refused.json()["code"]) == (409, "DEPOSIT_ALREADY_ATTRIBUTED")
    async with db.read() as conn:
        actors = (
            await conn.execute(
                select(audit_log.c.actor).where(audit_log.c.action == "deposit.attribute")
            )
        ).scalars()
        assert len(list(actors)) == 1


async def test_resolve_over_http_and_its_refusals(
    client: httpx.AsyncClient, db: Database, admin_key: str
) -> None:
    await _nobodys_deposits(client, db, admin_key)
    h = auth(admin_key)
    resolved = await client.post(
        RESOLVE.format("dep_2"), json={"outcome": "ignored", "note": "spam"}, headers=h
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["message"] == "Deposit resolved as ignored"
    assert resolved.json()["data"]["resolution"]["outcome"] == "ignored"
    assert resolved.json()["data"]["depositReference"] is None

    cases = [
        (RESOLVE, "dep_2", {"outcome": "refunded", "note": "x"}, 409, "DEPOSIT_RESOLVED"),
        (RESOLVE, "dep_1", {"outcome": "lost", "note": "x"}, 400, "VALIDATION_FAILED"),
        (RESOLVE, "dep_1", {"outcome": "refunded", "note": " "}, 400, "VALIDATION_FAILED"),
        (ATTRIBUTE, "dep_1", {"depositReference": "r1"}, 400, "VALIDATION_FAILED"),
        (ATTRIBUTE, "dep_1", {"depositReference": "nobody", "reason": "x"}, 404, None),
        (ATTRIBUTE, "dep_9", {"depositReference": "r1", "reason": "x"}, 404, "DEPOSIT_NOT_FOUND"),
    ]
    for path, dep, body, status, code in cases:
        answer = await client.post(path.format(dep), json=body, headers=h)
        assert answer.status_code == status, (path, body, answer.text)
        assert answer.json()["code"] == (code or "REFERENCE_NOT_BOUND")


async def test_deposit_keys_may_not_decide(
    client: httpx.AsyncClient, db: Database, admin_key: str
) -> None:
    await _nobodys_deposits(client, db, admin_key)
    for scopes in (["deposits:write", "deposits:read"], ["console:read"]):
        key = await make_key(db, scopes=scopes)
        body = {"outcome": "refunded", "note": "x"}
        refused = await client.post(RESOLVE.format("dep_1"), json=body, headers=auth(key))
        assert refused.status_code == 403, refused.text
        assert "console:write" in refused.json()["message"]
    async with db.read() as conn:
        assert (
            await conn.scalar(select(deposit.c.resolution).where(deposit.c.id == "dep_1")) is None
        )
