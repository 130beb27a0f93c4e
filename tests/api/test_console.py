"""The operator console in process, both databases: sign-in with an API key exchanged for a
session cookie, the overview's numbers equal the API's, and everything that must be refused is
(docs/operations.md, The console)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pool.alerts.repository import fire_alert
from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import (
    audit_log,
    console_session,
)
from tests.api.test_payment_page import Page
from tests.fixtures.helpers import auth, load_pool, make_key

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def hidden_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    form = await client.get("/ui/sign-in")
    assert form.status_code == 200, form.text
    return await client.post(
        "/ui/sign-in",
        data={"csrf": hidden_token(form.text), "key": key},
        headers={**SAME_ORIGIN, **headers},
    )


def cells(html: str, row_id: str) -> list[str]:
    """The text of each cell of the table row whose data-protocol is `row_id`."""
    row = re.search(rf'<tr data-protocol="{row_id}">(.*?)</tr>', html, re.S)
    assert row, html
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1))
    ]


async def test_a_signed_out_browser_is_sent_to_sign_in(client, db: Database) -> None:
    for path in ("/ui", "/ui/deposits", "/ui/anything/else"):
        response = await client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/ui/sign-in"
    page = await client.get("/ui/sign-in")
    assert page.status_code == 200 and "set-cookie" not in page.headers
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    parsed = Page(page.text)
    assert not parsed.scripts and not parsed.inline_script
    assert 'type="password"' in page.text and 'autocomplete="off"' in page.text


async def test_signing_in_exchanges_the_key_for_a_session_cookie(
    client, db: Database, console_key: str
) -> None:
    response = await sign_in(client, console_key)
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("addrpool_console=")
    for attribute in ("HttpOnly", "Path=/ui", "SameSite=strict", "Max-Age=28800"):
        assert attribute in cookie, cookie
    assert "Secure" not in cookie  # served over http here; over https it is Secure
    token = cookie.split(";")[0].split("=", 1)[1]
    async with db.read() as conn:
        stored = (await conn.execute(select(console_session.c.id))).scalars().all()
        actions = (await conn.execute(select(audit_log.c.action))).scalars().all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]  # the token is not kept
    assert "console.sign_in" in actions
    overview = await client.get("/ui")
    assert overview.status_code == 200 and "Overview" in overview.text
    assert console_key not in overview.text and token not in overview.text
    assert "(read only)" in overview.text


@pytest.mark.parametrize(
    ("scopes", "status", "message"),
    [
        (["deposits:read"], 403, "needs the console:read scope"),
        (None, 401, "not an active API key"),
    ],
)
async def test_a_key_that_may_not_open_the_console_gets_no_session(
    client, db: Database, scopes: list[str] | None, status: int, message: str
) -> None:
    key = await make_key(db, scopes=scopes) if scopes else "pk_test_" + "x" * 40
    response = await sign_in(client, key)
    assert response.status_code == status and message in response.text
    assert "set-cookie" not in response.headers and key not in response.text
    async with db.read() as conn:
        assert (await conn.execute(select(console_session.c.id))).all() == []


async def test_a_forged_sign_in_is_refused(client, db: Database, console_key: str) -> None:
    cross = await sign_in(client, console_key, **{"Sec-Fetch-Site": "cross-site"})
    no_token = await client.post("/ui/sign-in", data={"key": console_key}, headers=SAME_ORIGIN)
    for response in (cross, no_token):
        assert response.status_code == 403 and "set-cookie" not in response.headers


async def test_revoking_the_key_ends_its_sessions(client, db: Database) -> None:
    console_key = await make_key(db, scopes=["console:read"])
    await sign_in(client, console_key)
    assert (await client.get("/ui")).status_code == 200
    async with db.write() as conn:
        [target] = [k for k in await keys.list_keys(conn) if "console:read" in k.scopes]
        await keys.revoke_key(conn, id_or_prefix=str(target.id), actor="test", now=utc_now())
    response = await client.get("/ui")
    assert response.status_code == 303 and response.headers["location"] == "/ui/sign-in"


async def test_signing_out_needs_the_sessions_token_and_ends_it(
    client, db: Database, console_key: str
) -> None:
    await sign_in(client, console_key)
    page = await client.get("/ui")
    refused = await client.post("/ui/sign-out", data={"csrf": "guess"}, headers=SAME_ORIGIN)
    assert refused.status_code == 403
    assert (await client.get("/ui")).status_code == 200
    done = await client.post(
        "/ui/sign-out", data={"csrf": hidden_token(page.text)}, headers=SAME_ORIGIN
    )
    assert done.status_code == 303 and done.headers["location"] == "/ui/sign-in"
    assert 'addrpool_console=""' in done.headers["set-cookie"]
    async with db.read() as conn:
        assert (await conn.execute(select(console_session.c.id))).all() == []
        actions = (await conn.execute(select(audit_log.c.action))).scalars().all()
    assert "console.sign_out" in actions


async def test_sign_in_attempts_are_limited_per_client(client, db: Database) -> None:
    statuses = [(await sign_in(client, "pk_test_" + "y" * 40)).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_the_overview_shows_what_the_api_answers(
    client, db: Database, console_key: str, admin_key: str
) -> None:
    await load_pool(db, "evm", 7)
    await load_pool(db, "tron", 2)
    for n in range(3):
        bound = await client.post(
            "/api/v1/deposits/bind",
            json={"depositReference": f"user_{n}", "protocol": "evm"},
            headers=auth(admin_key),
        )
        assert bound.status_code == 201
    async with db.write() as conn:
        await fire_alert(
            conn,
            kind="pool_low",
            subject="pool_low:tron",
            severity="warning",
            value="2",
            details={"protocol": "tron"},
            now=utc_now(),
        )
    await sign_in(client, console_key)
    page = (await client.get("/ui")).text
    summary = (await client.get("/api/v1/address-pool/summary", headers=auth(admin_key))).json()
    for protocol in ("evm", "tron"):
        expected: dict[str, Any] = summary["data"][protocol]
        shown = cells(page, protocol)
        assert shown[1:8] == [
            str(expected[name])
            for name in (
                "total",
                "available",
                "bound",
                "allocated",
                "coolingDown",
                "archived",
                "threshold",
            )
        ]
    assert "pool_low:tron" in page and "No reconciliation has run yet." in page
    # Three binds today: the last bar of the chart, titled with today's date.
    today = utc_now().date().isoformat()
    assert f"<title>{today}: 3</title>" in page
    assert "3 in 30 days" in page
