"""Deposits of the chain's own coin where operators read them: the console's deposits page and
its CSV export, and the daily totals (JSON and CSV), both databases."""

from __future__ import annotations

import csv
import io

from sqlalchemy import update

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import deposit
from tests.api.test_console import sign_in
from tests.fixtures.helpers import add_deposit, auth, load_pool

ETH = 10**18


async def _deposits(client, db: Database, admin_key: str) -> None:
    """dep_1 a USDT transfer; dep_2 ETH sent by an account; dep_3 ETH sent by a contract."""
    await load_pool(db, "evm", 2)
    bound = await client.post(
        "/api/v1/deposits/bind",
        json={"depositReference": "user_eth", "protocol": "evm"},
        headers=auth(admin_key),
    )
    assert bound.status_code == 201
    for n in (1, 2, 3):
        await add_deposit(db, "user_eth", n=n)
    async with db.write() as conn:
        await conn.execute(update(deposit).values(confirmed_at=utc_now()))
        for n, position, amount in ((2, "tx", ETH // 2), (3, "tx.0.1", 2 * ETH)):
            await conn.execute(
                update(deposit)
                .where(deposit.c.id == f"dep_{n}")
                .values(
                    token_contract="native",
                    currency="ETH",
                    decimals=18,
                    amount=amount,
                    log_index=-1,
                    trace_position=position,
                )
            )


async def test_the_console_shows_and_exports_native_deposits_by_trace_position(
    client, db: Database, console_key: str, admin_key: str
) -> None:
    await _deposits(client, db, admin_key)
    await sign_in(client, console_key)
    page = (await client.get("/ui/deposits")).text
    assert "0.5 ETH" in page and "2 ETH" in page and "1 USDT" in page
    assert "(the transaction's own value)" in page
    assert "(internal, at tx.0.1)" in page
    assert "#1" in page  # the token transfer's log index
    only_eth = (await client.get("/ui/deposits?token=ETH")).text
    assert "1 USDT" not in only_eth and "0.5 ETH" in only_eth
    exported = await client.get("/ui/deposits.csv")
    assert exported.status_code == 200
    rows = {r["depositId"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert [
        (r["currency"], r["amount"], r["logIndex"], r["tracePosition"])
        for r in (
            rows["dep_1"],
            rows["dep_2"],
            rows["dep_3"],
        )
    ] == [("USDT", "1", "1", ""), ("ETH", "0.5", "", "tx"), ("ETH", "2", "", "tx.0.1")]


async def test_daily_totals_show_the_coin_without_a_contract(
    client, db: Database, admin_key: str
) -> None:
    await _deposits(client, db, admin_key)
    answer = await client.get("/api/v1/reconciliation/totals", headers=auth(admin_key))
    assert answer.status_code == 200, answer.text
    totals = {t["currency"]: t for t in answer.json()["data"]["totals"]}
    assert (totals["ETH"]["tokenContract"], totals["ETH"]["count"], totals["ETH"]["amount"]) == (
        None,
        2,
        "2.5",
    )
    assert totals["USDT"]["tokenContract"] == "0x" + "3" * 40
    text = await client.get("/api/v1/reconciliation/totals?format=csv", headers=auth(admin_key))
    rows = {r["currency"]: r for r in csv.DictReader(io.StringIO(text.text))}
    assert (rows["ETH"]["tokenContract"], rows["ETH"]["amount"]) == ("", "2.5")
