"""The operator console in a real browser (Chromium, headless) against a real `addrpool serve`:
sign in with an API key, read the overview, sign out — the cookie is set and cleared by the
browser itself (HttpOnly: no script can read it). Screenshots go to `.artifacts/pages/`."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By

from pool.kit.db import Database
from tests.fixtures.browser import browser, screenshot, text, wait_for_text
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.server import running_server

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
