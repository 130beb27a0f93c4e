"""The payer's page in a real browser (Chromium, headless) against a real `addrpool serve`
watching anvil: what the payer sees from the link to the merchant's page, paying from the devnet
— on a desktop and a phone's width, with and without JavaScript, and an order left to expire.
Screenshots of each state go to `.artifacts/pages/`."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import update

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import payment_order
from scripts.devnet import anvil
from tests.fixtures.browser import (
    PHONE,
    MerchantSite,
    browser,
    decoded_qr,
    landed_on,
    merchant_site,
    screenshot,
    text,
    wait_for_text,
)
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.order_rows import chain_now, mine_past, stamp_next_block
from tests.fixtures.orders import devnet_serve_env
from tests.fixtures.polling import wait_until
from tests.fixtures.server import Server, running_server

pytestmark = [pytest.mark.server, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]
USDT = 10**6
CONFIRMATIONS = 3


@dataclass(slots=True)
class Shop:
    """A server watching the devnet, a merchant's site, and a way to create orders."""

    server: Server
    site: MerchantSite
    api: httpx.Client
    devnet: Devnet

    def order(self, amount: str) -> dict:
        body = {
            "orderReference": f"shop_{secrets.token_hex(4)}",
            "amount": amount,
            "currency": "USDT",
            "chainId": "devnet",
            "successUrl": f"{self.site.url}/thanks?cart=7",
            "cancelUrl": f"{self.site.url}/cancelled",
        }
        response = self.api.post("/orders", json=body)
        assert response.status_code == 201, response.text
        return self.ready_to_pay(response.json()["data"])

    def ready_to_pay(self, order: dict) -> dict:
        # The shared devnet's clock may lag ours: a payment counts from the order's second.
        created = utc_now().fromisoformat(order["createdAt"].replace("Z", "+00:00"))
        if chain_now(self.devnet.url) <= created:
            stamp_next_block(self.devnet.url, created + timedelta(seconds=1))
        return order

    def link(self, **fields: object) -> dict:
        body = {
            "title": "Logo design - Invoice #2025-001",
            "description": "Logo design + 5 landing pages",
            "amount": "25",
            "currencies": [
                {"currency": "USDT", "chainId": "devnet"},
                {"currency": "USDC", "chainId": "devnet"},
            ],
            "inventoryTotal": 10,
            "successUrl": f"{self.site.url}/thanks",
            **fields,
        }
        created = self.api.post("/payment-links", json=body)
        assert created.status_code == 201, created.text
        published = self.api.post(f"/payment-links/{created.json()['data']['id']}/publish")
        assert published.status_code == 200, published.text
        return published.json()["data"]

    def pay(self, order: dict, amount: int) -> str:
        return anvil.transfer(self.devnet.url, self.devnet.usdt, order["address"], amount)

    def status(self, order: dict) -> dict:
        response = self.api.get(f"/orders/{order['orderId']}")
        return response.json()["data"]


@contextmanager
def shop(
    database_url: str, devnet: Devnet, tmp_path: Path, key: str, confirmations: int
) -> Iterator[Shop]:
    env = devnet_serve_env(tmp_path, devnet, confirmations=confirmations, usdc=True)
    with merchant_site() as site, running_server(database_url, extra_env=env) as server:
        api = httpx.Client(base_url=f"{server.base_url}/api/v1", headers=auth(key))
        yield Shop(server, site, api, devnet)


@pytest.fixture
async def key(db: Database) -> str:
    await load_pool(db, "evm", 5)
    return await make_key(db, scopes=None)


async def test_a_payer_pays_in_two_parts_and_lands_on_the_merchants_page(
    database_url: str, db: Database, devnet: Devnet, tmp_path: Path, key: str, no_proxy_env: None
) -> None:
    with shop(database_url, devnet, tmp_path, key, CONFIRMATIONS) as it, browser() as page:
        order = it.order("100")
        page.get(order["paymentUrl"])
        wait_for_text(page, "Waiting for your payment.")
        shown = text(page)
        for expected in ("Pay 100 USDT", order["address"], "Send USDT on devnet only"):
            assert expected in shown
        assert decoded_qr(page) == [order["address"]]  # what a wallet's scanner reads
        assert page.find_element(By.ID, "copy").is_displayed()  # the script is running
        screenshot(page, "desktop-1-waiting")

        it.pay(order, 40 * USDT)
        wait_for_text(page, f"Payment seen: 1 of {CONFIRMATIONS} confirmations.")
        screenshot(page, "desktop-2-confirming")
        anvil.mine(devnet.url, 1)
        wait_for_text(page, f"Payment seen: 2 of {CONFIRMATIONS} confirmations.")
        anvil.mine(devnet.url, 1)
        wait_for_text(page, "Received 40 of 100 USDT: send 60 USDT more.")
        screenshot(page, "desktop-3-partial")

        tx_hash = it.pay(order, 60 * USDT)
        anvil.mine(devnet.url, CONFIRMATIONS - 1)
        wait_until(landed_on(page, it.site.url), timeout=30, what="the merchant's page")
        screenshot(page, "desktop-4-merchant")
    landed = urlsplit(it.site.visits[-1])
    assert landed.path == "/thanks"
    assert {k: v[0] for k, v in parse_qs(landed.query).items()} == {
        "cart": "7",
        "orderId": order["orderId"],
        "orderReference": order["orderReference"],
        "status": "completed",
        "txHash": tx_hash,
    }


async def test_a_phone_without_javascript_still_sees_the_payment_through(
    database_url: str, db: Database, devnet: Devnet, tmp_path: Path, key: str, no_proxy_env: None
) -> None:
    """375 px wide, scripts off: nothing wider than the screen, the page reloads itself, the
    final page sends the payer on by itself."""
    with (
        shop(database_url, devnet, tmp_path, key, 1) as it,
        browser(size=PHONE, javascript=False) as page,
    ):
        order = it.order("12.5")
        page.get(order["paymentUrl"])
        wait_for_text(page, "Waiting for your payment.")
        width = page.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE[0]
        assert not page.find_element(By.ID, "copy").is_displayed()  # needs the script
        assert order["address"] in text(page)
        screenshot(page, "phone-nojs-1-waiting")
        it.pay(order, 12_500_000)
        wait_until(lambda: it.status(order)["status"] == "completed", what="the order paid")
        # The page's own refresh (10 s), then the final page's (3 s) to the merchant.
        wait_until(landed_on(page, it.site.url), timeout=40, what="the merchant's page")
    assert urlsplit(it.site.visits[-1]).path == "/thanks"


async def test_an_order_left_to_expire_sends_the_payer_to_the_cancel_page(
    database_url: str, db: Database, devnet: Devnet, tmp_path: Path, key: str, no_proxy_env: None
) -> None:
    with shop(database_url, devnet, tmp_path, key, 1) as it, browser(size=PHONE) as page:
        order = it.order("5")
        page.get(order["paymentUrl"])
        wait_for_text(page, "Waiting for your payment.")
        # The API's shortest window is a minute: end this one in two seconds.
        ends = utc_now() + timedelta(seconds=2)
        async with db.write() as conn:
            await conn.execute(
                update(payment_order)
                .where(payment_order.c.id == order["orderId"])
                .values(window_ends_at=ends, grace_ends_at=ends)
            )
        page.refresh()
        wait_for_text(page, "The time to pay is over")  # the countdown reached zero
        screenshot(page, "phone-1-window-closed")
        mine_past(devnet.url, ends)  # the chain's clock passes the grace end too
        wait_until(landed_on(page, it.site.url), timeout=30, what="the cancel page")
    landed = urlsplit(it.site.visits[-1])
    assert landed.path == "/cancelled"
    assert parse_qs(landed.query)["status"] == ["expired"]


async def test_a_payment_link_on_a_phone_takes_the_payer_from_the_choice_to_paid(
    database_url: str, db: Database, devnet: Devnet, tmp_path: Path, key: str, no_proxy_env: None
) -> None:
    """A shared link: the payer picks USDC, lands on the order's page, pays, reaches the
    merchant; the link has sold one."""
    with shop(database_url, devnet, tmp_path, key, 1) as it, browser(size=PHONE) as page:
        link = it.link()
        page.get(link["checkoutUrl"])
        wait_for_text(page, "Logo design - Invoice #2025-001")
        shown = text(page)
        assert "USDC on devnet" in shown and "10 left" in shown
        assert page.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
        screenshot(page, "link-1-checkout")
        page.find_element(By.CSS_SELECTOR, 'label[for="choice-1"]').click()
        page.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for_text(page, "Pay 25 USDC")
        order_id = urlsplit(page.current_url).path.rsplit("/", 1)[-1]
        order = it.ready_to_pay(it.status({"orderId": order_id}))
        assert (order["currency"], order["paymentLinkId"]) == ("USDC", link["id"])
        assert decoded_qr(page) == [order["address"]]
        screenshot(page, "link-2-payment-page")
        anvil.transfer(devnet.url, devnet.usdc, order["address"], 25 * USDT)
        wait_until(landed_on(page, it.site.url), timeout=30, what="the merchant's page")
        sold = it.api.get(f"/payment-links/{link['id']}").json()["data"]
    assert parse_qs(urlsplit(it.site.visits[-1]).query)["orderId"] == [order_id]
    assert (sold["inventorySold"], sold["inventoryReserved"], sold["inventoryAvailable"]) == (
        1,
        0,
        9,
    )
