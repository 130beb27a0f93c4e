"""A payment link's public checkout in process, both databases (docs/api.md, Payment links):
what a payer reads, what creates an order (and what creates nothing), and the limits that keep
a stranger from draining the pool. A real browser runs it in tests/scripts/run/."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from api.app import create_app
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import address, payment_order
from tests.api.test_payment_page import Page, text_of
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.orders import order_settings

LINKS = "/api/v1/payment-links"
SEPOLIA = {"currency": "USDT", "chainId": "ethereum-sepolia"}
BSC = {"currency": "USDT", "chainId": "bsc-testnet"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def checkout_post(
    client: httpx.AsyncClient, slug: str, headers: dict[str, str] | None = None, **form: str
) -> httpx.Response:
    """What a payer's browser does: open the form, post it back with its token."""
    page = await client.get(f"/checkout/{slug}")
    assert page.status_code == 200, page.text
    fields = {"csrf": form_token(page.text), "choice": "0", **form}
    return await client.post(
        f"/checkout/{slug}", data=fields, headers={**SAME_ORIGIN, **(headers or {})}
    )


async def published_link(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    body = {"title": "Invoice #7", "amount": "25", "currencies": [SEPOLIA], **fields}
    created = await client.post(LINKS, json=body, headers=auth(key))
    assert created.status_code == 201, created.text
    link_id = created.json()["data"]["id"]
    published = await client.post(f"{LINKS}/{link_id}/publish", headers=auth(key))
    assert published.status_code == 200
    return published.json()["data"]


async def _orders(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(payment_order)) or 0)


def _client(app: Any, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://shop.test")


async def test_the_form_shows_the_link_and_its_choices_safely(
    orders_client, db: Database, service_key
) -> None:
    link = await published_link(
        orders_client,
        service_key,
        title="<script>alert(1)</script> Invoice",
        description="Logo design\n5 landing pages",
        currencies=[SEPOLIA, BSC],
        inventoryTotal=3,
    )
    response = await orders_client.get(f"/checkout/{link['slug']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    assert "set-cookie" not in response.headers
    page = Page(response.text)
    assert not page.inline_script
    assert all(not urlsplit(url).netloc for url in page.urls), page.urls
    text = text_of(response.text)
    assert "<script>alert(1)" not in response.text and "&lt;script&gt;" in response.text
    assert "25" in text and "3 left" in text
    assert "USDT on Ethereum Sepolia (testnet)" in text
    assert "USDT on BNB Smart Chain (testnet)" in text
    assert form_token(response.text)
    chinese = await orders_client.get(
        f"/checkout/{link['slug']}", headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    )
    assert "继续付款" in chinese.text and "剩余 3 件" in chinese.text


async def test_a_checkout_creates_the_order_and_sends_the_payer_to_its_page(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 2)
    link = await published_link(orders_client, service_key, currencies=[SEPOLIA, BSC])
    response = await checkout_post(orders_client, link["slug"], choice="1")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("http://shop.test/pay/order/ord_")
    order_id = location.rsplit("/", 1)[-1]
    order = await orders_client.get(f"/api/v1/orders/{order_id}", headers=auth(service_key))
    data = order.json()["data"]
    assert (data["paymentLinkId"], data["chainId"], data["amount"]) == (
        link["id"],
        "bsc-testnet",
        "25",
    )
    page = await orders_client.get(urlsplit(location).path)
    assert page.status_code == 200 and "Pay 25 USDT" in text_of(page.text)
    after = await orders_client.get(f"{LINKS}/{link['id']}", headers=auth(service_key))
    assert after.json()["data"]["inventoryReserved"] == 1


async def test_an_open_amount_is_entered_and_checked(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 1)
    link = await published_link(orders_client, service_key, amount="0")
    form = await orders_client.get(f"/checkout/{link['slug']}")
    assert 'name="amount"' in form.text and '<label for="amount">' in form.text
    refused = await checkout_post(orders_client, link["slug"], amount="12.1234567")
    assert refused.status_code == 400
    assert "no more decimals than the token has" in text_of(refused.text)
    assert 'value="12.1234567"' in refused.text  # kept for the payer to correct
    assert await _orders(db) == 0
    made = await checkout_post(orders_client, link["slug"], amount="12.5")
    assert made.status_code == 303
    order_id = made.headers["location"].rsplit("/", 1)[-1]
    order = await orders_client.get(f"/api/v1/orders/{order_id}", headers=auth(service_key))
    assert order.json()["data"]["amount"] == "12.5"


@pytest.mark.parametrize(
    "forge",
    ["no token", "another link's token", "cross-site", "not a form", "tampered token"],
)
async def test_a_forged_or_stale_post_creates_nothing(
    orders_client, db: Database, service_key, forge: str
) -> None:
    await load_pool(db, "evm", 2)
    link = await published_link(orders_client, service_key)
    other = await published_link(orders_client, service_key)
    token = form_token((await orders_client.get(f"/checkout/{link['slug']}")).text)
    other_token = form_token((await orders_client.get(f"/checkout/{other['slug']}")).text)
    url = f"/checkout/{link['slug']}"
    if forge == "no token":
        response = await orders_client.post(url, data={"choice": "0"}, headers=SAME_ORIGIN)
    elif forge == "another link's token":
        response = await orders_client.post(
            url, data={"choice": "0", "csrf": other_token}, headers=SAME_ORIGIN
        )
    elif forge == "cross-site":
        response = await orders_client.post(
            url, data={"choice": "0", "csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
    elif forge == "not a form":
        response = await orders_client.post(url, json={"choice": "0", "csrf": token})
    else:
        issued, _, mac = token.partition(".")
        response = await orders_client.post(
            url, data={"choice": "0", "csrf": f"{int(issued) + 1}.{mac}"}, headers=SAME_ORIGIN
        )
    assert response.status_code == 403
    assert "This form has expired" in text_of(response.text)
    assert await _orders(db) == 0


@pytest.mark.parametrize(
    ("state", "status", "sentence"),
    [
        ("draft", 404, "This payment link is not open yet."),
        ("archived", 410, "This payment link is closed."),
        ("sold_out", 409, "Sold out"),
        ("unknown", 404, "There is no payment at this link."),
    ],
)
async def test_a_link_that_takes_no_order_says_so_and_creates_nothing(
    orders_client, db: Database, service_key, state: str, status: int, sentence: str
) -> None:
    await load_pool(db, "evm", 2)
    link = await published_link(orders_client, service_key, inventoryTotal=1)
    token = form_token((await orders_client.get(f"/checkout/{link['slug']}")).text)
    slug = link["slug"]
    if state == "draft":
        body = {"title": "Draft", "amount": "1", "currencies": [SEPOLIA]}
        created = await orders_client.post(LINKS, json=body, headers=auth(service_key))
        slug = created.json()["data"]["slug"]
    elif state == "archived":
        await orders_client.post(f"{LINKS}/{link['id']}/archive", headers=auth(service_key))
    elif state == "sold_out":
        assert (await checkout_post(orders_client, slug)).status_code == 303
    else:
        slug = "no-such-link"
    before = await _orders(db)
    page = await orders_client.get(f"/checkout/{slug}")
    assert page.status_code == status and sentence in text_of(page.text)
    posted = await orders_client.post(
        f"/checkout/{slug}", data={"choice": "0", "csrf": token}, headers=SAME_ORIGIN
    )
    assert posted.status_code in (status, 403)  # another link's token, or the closed page
    assert await _orders(db) == before


@pytest.fixture
def capped(database_url: str) -> Settings:
    return order_settings(
        database_url,
        checkout={"pending_per_link": 3, "orders_per_client_per_minute": 6, "client_burst": 2},
    )


async def test_one_client_is_limited_and_told_when_to_try_again(
    capped: Settings, db: Database
) -> None:
    await load_pool(db, "evm", 10)
    app = create_app(capped, db=db)
    key = await make_key(db, scopes=None)
    before = {outcome: _checkouts(outcome) for outcome in ("created", "client_limited")}
    async with _client(app, "203.0.113.7") as payer, _client(app, "203.0.113.8") as other:
        link = await published_link(payer, key)
        statuses = [(await checkout_post(payer, link["slug"])).status_code for _ in range(2)]
        refused = await checkout_post(payer, link["slug"])
        assert statuses == [303, 303] and refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 10  # 6 a minute: a token every 10 s
        assert f"Busy, try again in {wait} s." in text_of(refused.text)
        assert (await checkout_post(other, link["slug"])).status_code == 303
    await app.state.ctx.pool_alerts.close()
    assert await _orders(db) == 3
    assert _checkouts("created") - before["created"] == 3  # /metrics: addrpool_checkouts_total
    assert _checkouts("client_limited") - before["client_limited"] == 1


def _checkouts(outcome: str) -> float:
    return REGISTRY.get_sample_value("addrpool_checkouts_total", {"outcome": outcome}) or 0.0


async def test_a_script_hammering_a_checkout_takes_no_more_than_the_cap_of_the_pool(
    capped: Settings, db: Database
) -> None:
    """From a hundred client addresses at once (each within its own limit): the cap of pending
    orders per link is what holds, in the database, whatever the addresses or processes."""
    await load_pool(db, "evm", 20)
    app = create_app(capped, db=db)
    key = await make_key(db, scopes=None)
    async with _client(app, "198.51.100.1") as operator:
        link = await published_link(operator, key)
        token = form_token((await operator.get(f"/checkout/{link['slug']}")).text)

    async def hammer(n: int) -> int:
        async with _client(app, f"10.0.{n // 250}.{n % 250}") as bot:
            response = await bot.post(
                f"/checkout/{link['slug']}",
                data={"choice": "0", "csrf": token},
                headers=SAME_ORIGIN,
            )
            return response.status_code

    statuses = await asyncio.gather(*(hammer(n) for n in range(100)))
    await app.state.ctx.pool_alerts.close()
    assert statuses.count(303) == 3 and statuses.count(429) == 97
    async with db.read() as conn:
        free = await conn.scalar(select(func.count()).where(address.c.status == "available"))
    assert free == 17 and await _orders(db) == 3


async def test_a_dry_pool_says_busy_and_creates_nothing(
    orders_client, db: Database, service_key
) -> None:
    link = await published_link(orders_client, service_key)
    response = await checkout_post(orders_client, link["slug"])
    assert response.status_code == 503 and response.headers["retry-after"] == "60"
    assert "Busy, try again in 60 s." in text_of(response.text)
    after = await orders_client.get(f"{LINKS}/{link['id']}", headers=auth(service_key))
    assert after.json()["data"]["inventoryReserved"] == 0
