"""The payer's page and its status poll, in process, both databases (docs/api.md, Public pages):
what a payer reads in each state, in English and Chinese, the headers that keep it safe, and
nothing a payer should not see. A real browser runs the page in tests/scripts/run/."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import segno
from sqlalchemy import update

from api.pages.i18n import negotiate
from pool.kit.db import Database
from pool.kit.tables import deposit
from pool.vocabulary import COMPLETED, EXPIRED
from tests.api.test_orders_lifecycle_api import _create, _end, link_payment
from tests.fixtures.helpers import load_pool

USDT = 10**6
PAGE_BUDGET = 60 * 1024  # HTML + CSS + JS + QR code, as a phone downloads them


class Page(HTMLParser):
    """The parts of a page the tests read: visible text per state, links, scripts, metas."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.metas: list[dict[str, str | None]] = []
        self.inline_script = False
        self.states: dict[str, bool] = {}  # data-when → shown
        self.attributes: list[dict[str, str | None]] = []
        self.lang = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.attributes.append(found)
        if tag == "html":
            self.lang = found.get("lang") or ""
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if tag == "script":
            self.scripts.append(found)
            self.inline_script = self.inline_script or not found.get("src")
        if tag == "meta":
            self.metas.append(found)
        if "data-when" in found:
            self.states[str(found["data-when"])] = "hidden" not in found
        if "style" in found:
            raise AssertionError(f"inline style on <{tag}>: the policy would block it")

    def shown_state(self) -> str:
        [shown] = [state for state, visible in self.states.items() if visible]
        return shown


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_new_orders_page_says_what_to_pay_where_and_nothing_more(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(
        orders_client, service_key, amount="25.5", metadata={"customer": "alice@example"}
    )
    response = await orders_client.get(f"/pay/order/{order['orderId']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    page = Page(response.text)
    assert page.lang == "en"
    assert not page.inline_script and len(page.scripts) == 1
    # Every asset from this host, by a relative URL.
    assert all(not urlsplit(url).netloc and not url.startswith("//") for url in page.urls)
    assert page.shown_state() == "waiting"
    text = text_of(response.text)
    for shown in (
        "Pay 25.5 USDT",
        "Ethereum Sepolia (testnet)",
        "Send USDT on Ethereum Sepolia (testnet) only",
        order["address"],
        "Waiting for your payment.",
        "Time left to pay",
    ):
        assert shown in text, shown
    assert re.search(r"\b(10:00|9:[0-5]\d)\b", text)  # the window's countdown
    # Without JavaScript the page reloads itself.
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in response.text
    for hidden in ("alice@example", "customer", order["orderReference"], "order_1"):
        assert hidden not in response.text


async def test_chinese_from_accept_language(orders_client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key, amount="3")
    headers = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    response = await orders_client.get(f"/pay/order/{order['orderId']}", headers=headers)
    page = Page(response.text)
    assert page.lang == "zh"
    assert response.headers["vary"] == "Accept-Language"
    text = text_of(response.text)
    assert "支付 3 USDT" in text and "等待您的付款。" in text
    assert "仅限在 Ethereum Sepolia (测试网) 上发送 USDT" in text


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("fr-FR,fr;q=0.9", "en"),
        ("zh", "zh"),
        ("zh-TW", "zh"),
        ("en-US,en;q=0.9,zh;q=0.8", "en"),
        ("fr,zh;q=0.5,en;q=0.4", "zh"),
        ("zh;q=0, en;q=0.1", "en"),
        ("zh;q=banana", "en"),
        ("*", "en"),
    ],
)
def test_language_negotiation(header: str | None, language: str) -> None:
    assert negotiate(header) == language


async def test_a_payment_still_confirming_then_a_partial_one(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key, amount="100")
    page_url = f"/pay/order/{order['orderId']}"
    await link_payment(db, order, n=1, amount=40 * USDT, status="pending")
    page = Page((await orders_client.get(page_url)).text)
    assert page.shown_state() == "confirming"
    status = (await orders_client.get(f"{page_url}/status")).json()["data"]
    assert (status["paymentProgress"], status["receivedAmount"], status["remainingAmount"]) == (
        "confirming",
        "40",
        "60",
    )

    await _confirm(db, "dep_1")
    response = await orders_client.get(page_url)
    assert Page(response.text).shown_state() == "partial"
    assert "Received 40 of 100 USDT: send 60 USDT more." in text_of(response.text)


async def test_paid_leaves_for_the_merchants_page(orders_client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(
        orders_client, service_key, amount="1", successUrl="https://shop.example/ok"
    )
    await link_payment(db, order, n=1, amount=USDT, status="confirmed")
    await _end(db, order, COMPLETED, completed_by="dep_1")
    response = await orders_client.get(f"/pay/order/{order['orderId']}")
    page = Page(response.text)
    assert page.shown_state() == "paid"
    [refresh] = [m for m in page.metas if m.get("http-equiv") == "refresh"]
    delay, _, target = str(refresh["content"]).partition(";url=")
    assert delay == "3" and target.startswith("https://shop.example/ok?orderId=")
    assert "txHash=0x" + f"{1:064x}" in target
    assert "Paid. Thank you!" in text_of(response.text)
    assert order["address"] not in response.text  # nothing more to pay: no address, no QR
    status = (await orders_client.get(f"/pay/order/{order['orderId']}/status")).json()["data"]
    assert status["redirectUrl"] == target.replace("&amp;", "&")


async def test_expired_says_what_to_do_if_paid_anyway(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key, reference="shop-77")
    await _end(db, order, EXPIRED)
    response = await orders_client.get(f"/pay/order/{order['orderId']}")
    page = Page(response.text)
    assert page.shown_state() == "expired"
    assert not [m for m in page.metas if m.get("http-equiv") == "refresh"]  # nowhere to go
    text = text_of(response.text)
    assert "This payment has expired." in text
    assert "contact the merchant and quote the order shop-77" in text


async def test_a_payment_in_another_token_is_named(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key)
    wrong = {**order, "currency": "USDC"}
    await link_payment(db, wrong, n=1, amount=5 * USDT, status="confirmed", role="mismatch")
    response = await orders_client.get(f"/pay/order/{order['orderId']}")
    assert (
        "We received 5 USDC on Ethereum Sepolia (testnet), which this order does not take."
        in text_of(response.text)
    )
    status = (await orders_client.get(f"/pay/order/{order['orderId']}/status")).json()["data"]
    assert status["otherPayments"] == [
        {"amount": "5", "currency": "USDC", "chainId": "ethereum-sepolia"}
    ]


async def test_unknown_orders_and_files_are_plain_404_pages(orders_client) -> None:
    for missing in (
        f"/pay/order/ord_{'0' * 32}",
        f"/pay/order/ord_{'0' * 32}/qr.svg",
        "/pay/order/" + "x" * 200,
        "/pay/static/secrets.txt",
        "/pay/static/..%2f..%2fpyproject.toml",
    ):
        response = await orders_client.get(missing)
        assert response.status_code == 404, missing
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "Payment not found" in response.text
    status = await orders_client.get(f"/pay/order/ord_{'0' * 32}/status")
    assert status.status_code == 404
    assert status.json() == {
        "success": False,
        "error": "NotFound",
        "code": "ORDER_NOT_FOUND",
        "message": "No payment at this link",
    }


async def test_the_page_weighs_little_and_its_files_are_versioned(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key)
    base = f"/pay/order/{order['orderId']}"
    html = (await orders_client.get(base)).text
    total = len(html.encode())
    for url in Page(html).urls:
        # Relative to the page, as a browser resolves them.
        path = url.replace("../static/", "/pay/static/").replace(f"{order['orderId']}/", f"{base}/")
        asset = await orders_client.get(path)
        assert asset.status_code == 200, url
        total += len(asset.content)
        if "/pay/static/" in path:
            assert "?v=" in url
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert asset.headers["content-type"].startswith(("text/css", "text/javascript"))
    assert total <= PAGE_BUDGET


async def test_the_qr_code_encodes_the_plain_address(orders_client, db, service_key) -> None:
    """The SVG is exactly the QR code of the address alone (no URI scheme, no amount)."""
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key)
    qr = await orders_client.get(f"/pay/order/{order['orderId']}/qr.svg")
    assert qr.headers["content-type"] == "image/svg+xml" and "set-cookie" not in qr.headers
    expected = segno.make_qr(order["address"], error="m")
    buffer = io.BytesIO()
    expected.save(buffer, kind="svg", scale=4, border=4, xmldecl=False)
    assert qr.text == buffer.getvalue().decode()


async def _confirm(db: Database, deposit_id: str) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(deposit).where(deposit.c.id == deposit_id).values(status="confirmed")
        )
