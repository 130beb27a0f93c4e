"""The operator console in a real browser (Chromium, headless) against a real `addrpool serve`:
sign in with an API key, read the overview, sign out — the cookie is set and cleared by the
browser itself (HttpOnly: no script can read it); and an operator's actions, each seen by a real
webhook receiver. Screenshots go to `.artifacts/pages/`."""

from __future__ import annotations

import json

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import update

from pool.alerts.repository import fire_alert
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import deposit
from tests.fixtures.browser import browser, screenshot, text, wait_for_text
from tests.fixtures.helpers import add_deposit, auth, load_pool, make_key
from tests.fixtures.polling import wait_until
from tests.fixtures.server import running_server
from tests.pool.webhooks.test_delivery import Receiver

pytestmark = [pytest.mark.server, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


async def test_an_operator_signs_in_reads_the_overview_and_signs_out(
    database_url: str, db: Database, no_proxy_env: None
) -> None:
    await load_pool(db, "evm", 12)
    console_key = await make_key(db, scopes=["console:read"])
    service_key = await make_key(db, scopes=None)
    with running_server(database_url) as server, browser() as page:
        for n in range(4):
            bound = httpx.post(
                f"{server.base_url}/api/v1/deposits/bind",
                json={"depositReference": f"user_{n}", "protocol": "evm"},
                headers=auth(service_key),
            )
            assert bound.status_code == 201
        page.get(f"{server.base_url}/ui")
        wait_for_text(page, "addrpool console")  # sent to the sign-in page
        screenshot(page, "console-1-sign-in")
        page.find_element(By.ID, "key").send_keys(console_key)
        page.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for_text(page, "Address pool")
        shown = text(page)
        assert "4 in 30 days" not in shown  # the chart's description is for screen readers
        row = page.find_element(By.CSS_SELECTOR, 'tr[data-protocol="evm"]').text.split()
        assert row[:5] == ["evm", "12", "8", "4", "0"]
        assert console_key not in page.page_source
        assert page.execute_script("return document.cookie") == ""  # HttpOnly
        screenshot(page, "console-2-overview")
        page.find_element(By.CSS_SELECTOR, ".sign-out button").click()
        wait_for_text(page, "addrpool console")
        page.get(f"{server.base_url}/ui")
        wait_for_text(page, "API key")  # signed out: back at the sign-in form
        assert page.get_cookies() == []


def _types(receiver: Receiver) -> list[str]:
    return [json.loads(body)["type"] for _, _, body in receiver.requests]


def _act(page: WebDriver, form_selector: str, reason: str, **fields: str) -> None:
    """Open the form's disclosure if it is in a closed one, fill its reason (and other text
    fields) and submit it."""
    form = page.find_element(By.CSS_SELECTOR, form_selector)
    folded = page.execute_script("return arguments[0].closest('details:not([open])')", form)
    if folded is not None:
        folded.find_element(By.TAG_NAME, "summary").click()
    for name, value in {**fields, "reason": reason}.items():
        box = form.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


async def test_an_operator_acts_from_the_console_and_the_receiver_sees_it(
    database_url: str, db: Database, no_proxy_env: None, receivers
) -> None:
    """Sign in with a key that may act; the overview's numbers are the API's; a failed delivery
    redelivered to a receiver that came back; an unattributed deposit attributed (the receiver
    gets its deposit.confirmed); an alert silenced; a range of events replayed; signed out."""
    receiver: Receiver = receivers((400, {}, 0.0), (200, {}, 0.0))  # down, then back
    await load_pool(db, "evm", 6)
    admin = await make_key(db, scopes=["admin"])
    env = {"ADDRPOOL_WEBHOOK_ALLOW_PRIVATE": "true", "ADDRPOOL_SECRET_KEY": "browser-test-secret"}
    with running_server(database_url, extra_env=env) as server, browser() as page:
        api = httpx.Client(base_url=f"{server.base_url}/api/v1", headers=auth(admin))
        endpoint = api.post(
            "/webhooks/endpoints",
            json={"url": receiver.url, "events": ["deposit.pending", "deposit.confirmed"]},
        ).json()["data"]["id"]
        assert api.post(f"/webhooks/endpoints/{endpoint}/test").status_code == 202
        for reference in ("user_a", "user_lost"):
            bound = api.post(
                "/deposits/bind", json={"depositReference": reference, "protocol": "evm"}
            )
            assert bound.status_code == 201
        await add_deposit(db, "user_lost", n=7)
        async with db.write() as conn:
            await conn.execute(
                update(deposit).where(deposit.c.id == "dep_7").values(binding_id=None)
            )
            await fire_alert(
                conn, kind="watcher_stalled", subject="chain:devnet", severity="critical",
                value=None, details=None, now=utc_now(),
            )  # fmt: skip
        failed = wait_until(
            lambda: api.get("/webhooks/deliveries", params={"status": "failed"}).json()["data"][
                "deliveries"
            ],
            what="the test delivery to fail",
        )

        page.get(f"{server.base_url}/ui/sign-in")
        page.find_element(By.ID, "key").send_keys(admin)
        page.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for_text(page, "Address pool")
        summary = api.get("/address-pool/summary").json()["data"]["evm"]
        row = page.find_element(By.CSS_SELECTOR, 'tr[data-protocol="evm"]').text.split()
        assert row[:4] == ["evm", str(summary["total"]), str(summary["available"]), "2"]
        screenshot(page, "console-3-overview-admin")

        page.get(f"{server.base_url}/ui/webhooks/deliveries/{failed[0]['id']}")
        _act(page, "form.act", "receiver fixed its firewall")
        wait_until(lambda: len(receiver.requests) == 2, what="the redelivery")
        assert _types(receiver) == ["test.event", "test.event"]
        screenshot(page, "console-4-redelivered")

        page.get(f"{server.base_url}/ui/deposits?unattributed=on")
        _act(page, 'form[action$="/attribute"]', "payer wrote to support", reference="user_a")
        wait_until(lambda: "deposit.confirmed" in _types(receiver), what="deposit.confirmed")
        credited = json.loads(receiver.requests[-1][2])["data"]
        assert credited["depositReference"] == "user_a"
        screenshot(page, "console-5-attributed")

        page.get(f"{server.base_url}/ui/alerts")
        _act(page, 'form[action$="/silence"]', "node maintenance", minutes="30")
        wait_for_text(page, "silenced until")
        screenshot(page, "console-6-silenced")

        sent_before = len(receiver.requests)
        page.get(f"{server.base_url}/ui/webhooks")
        _act(
            page, 'form[action$="/replay"]', "receiver lost its database", since="2000-01-01T00:00"
        )
        wait_until(lambda: len(receiver.requests) == sent_before + 2, what="the replay")
        # Both events again; sent side by side, so in either order (receivers dedupe by id).
        assert sorted(_types(receiver)[-2:]) == ["deposit.confirmed", "deposit.pending"]
        screenshot(page, "console-7-replayed")

        page.get(f"{server.base_url}/ui/audit")
        shown = text(page)
        for reason in ("receiver fixed its firewall", "payer wrote to support", "node maintenance",
                       "receiver lost its database"):  # fmt: skip
            assert reason in shown
        screenshot(page, "console-8-audit")
        page.find_element(By.CSS_SELECTOR, ".sign-out button").click()
        wait_for_text(page, "addrpool console")
        assert page.get_cookies() == []
