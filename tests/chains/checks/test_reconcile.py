"""Reconciliation against a real anvil node, a real receiver and both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from chains.checks.reconciler import reconcile
from pool.kit.config import ChainSettings, ReconcileSettings, Settings
from pool.kit.db import Database
from pool.kit.tables import alert, chain_cursor, delivery, deposit
from pool.webhooks.delivery import DeliveryWorker
from scripts.devnet import anvil
from tests.chains.harness import CONFIRMATIONS, USDT, Harness, chain_settings
from tests.fixtures.devnet import Devnet
from tests.pool.webhooks.test_delivery import deliver_all, endpoint

DEPOSIT_EVENTS = ["deposit.pending", "deposit.confirmed", "deposit.reverted"]


@pytest.fixture
def audit_settings(settings: Settings, devnet: Devnet) -> Settings:
    """The devnet chain watched, and no grace: a confirmed deposit is due at once. Runs go
    flat out here; the clean run below is paced as by default."""
    return settings.model_copy(
        update={
            "chains": {"devnet": ChainSettings(**chain_settings(devnet))},
            "reconcile": ReconcileSettings(grace=timedelta(0), duty_cycle=1.0),
        }
    )


async def confirmed_deposit(harness: Harness, reference: str, amount: int = USDT) -> str:
    address = await harness.bind(reference)
    harness.send(address, amount)
    harness.mine(CONFIRMATIONS)
    await harness.poll()
    row = next(r for r in await harness.deposits() if r["amount"] == amount)
    assert row["status"] == "confirmed"
    return str(row["id"])


async def firing(db: Database, kind: str | None = None) -> list[dict[str, Any]]:
    async with db.read() as conn:
        statement = select(alert).where(alert.c.state == "firing").order_by(alert.c.id)
        if kind is not None:
            statement = statement.where(alert.c.kind == kind)
        rows = await conn.execute(statement)
        return [dict(r._mapping) for r in rows.all()]


def reported(report: dict[str, Any], category: str) -> list[dict[str, Any]]:
    return [item for item in report["items"] if item["category"] == category]


async def test_a_clean_run_reports_no_discrepancy_and_the_api_serves_it(
    harness: Harness, audit_settings: Settings, db: Database, receivers, client, admin_key
) -> None:
    receiver = receivers()
    await endpoint(db, audit_settings, receiver.url, DEPOSIT_EVENTS)
    deposit_id = await confirmed_deposit(harness, "clean-user")
    await deliver_all(DeliveryWorker(db, audit_settings))
    assert (await harness.deposits())[0]["status"] == "completed"

    paced = audit_settings.model_copy(
        update={"reconcile": ReconcileSettings(grace=timedelta(0), duty_cycle=0.2)}
    )
    report = await reconcile(paced, db)
    assert report["restedMs"] > 0  # it rested between steps, and found the same
    assert report["discrepancies"] == 0
    assert report["depositsChecked"] == 1
    assert report["chains"]["devnet"]["verifiedOnChain"] == 1
    assert report["chains"]["devnet"]["error"] is None
    assert report["items"] == []
    assert await firing(db) == []

    headers = {"Authorization": f"Bearer {admin_key}"}
    served = (await client.get("/api/v1/reconciliation/report", headers=headers)).json()
    assert served["success"] is True
    assert served["data"]["id"] == report["id"]
    assert served["data"]["counts"] == report["counts"]
    totals = (await client.get("/api/v1/reconciliation/totals", headers=headers)).json()
    [day] = totals["data"]["totals"]
    assert (day["chainId"], day["currency"], day["count"], day["amount"]) == (
        "devnet",
        "USDT",
        1,
        "1",
    )
    row = (await harness.deposits())[0]
    assert day["firstBlock"] == day["lastBlock"] == row["block_number"]
    csv = await client.get("/api/v1/reconciliation/totals?format=csv", headers=headers)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("date,chainId,currency,tokenContract,count")
    assert deposit_id in {d["id"] for d in await harness.deposits()}


async def test_no_report_yet_is_a_clear_404(client: httpx.AsyncClient, admin_key: str) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    answer = await client.get("/api/v1/reconciliation/report", headers=headers)
    assert answer.status_code == 404
    assert answer.json()["error"] == "NotFound"
    bad = await client.get("/api/v1/reconciliation/totals?since=yesterday", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"] == "ValidationError"


async def test_an_unacknowledged_deposit_is_reported_then_requeued_then_resolved(
    harness: Harness, audit_settings: Settings, db: Database, receivers
) -> None:
    # The receiver refuses the first confirmed delivery (a final 4xx), then accepts.
    receiver = receivers((400, {}, 0.0), (200, {}, 0.0))
    await endpoint(db, audit_settings, receiver.url, ["deposit.confirmed"])
    deposit_id = await confirmed_deposit(harness, "stubborn-receiver")
    worker = DeliveryWorker(db, audit_settings)
    await deliver_all(worker)
    assert [d["status"] for d in await _deliveries(db)] == ["failed"]

    report = await reconcile(audit_settings, db)
    [item] = reported(report, "not_acknowledged")
    assert item["depositId"] == deposit_id
    assert report["repairs"]["requeuedDeliveries"] == 1
    [row] = await _deliveries(db)
    assert (row["status"], row["requeues"]) == ("pending", 1)
    [raised] = await firing(db, "reconciliation_discrepancy")
    assert (raised["kind"], raised["subject"]) == (
        "reconciliation_discrepancy",
        f"reconciliation:not_acknowledged:{deposit_id}",
    )

    await deliver_all(worker)  # the re-enqueued delivery now succeeds
    assert (await harness.deposits())[0]["status"] == "completed"
    clean = await reconcile(audit_settings, db)
    assert clean["discrepancies"] == 0
    assert clean["alerts"]["resolved"] == 1
    assert await firing(db, "reconciliation_discrepancy") == []


async def test_a_confirmed_deposit_reorged_away_unseen_is_reverted_and_announced(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    deposit_id = await confirmed_deposit(harness, "reorged")
    # The chain drops the deposit's block while the watcher is not looking.
    anvil.reorg(harness.devnet.url, CONFIRMATIONS + 1)

    report = await reconcile(audit_settings, db)
    [item] = reported(report, "not_canonical")
    assert item["depositId"] == deposit_id
    assert report["repairs"]["reverted"] == 1
    [row] = await harness.deposits()
    assert row["status"] == "reverted"
    assert [e[0] for e in await harness.events()][-1] == "deposit.reverted"
    kinds = {a["kind"] for a in await firing(db)}
    assert kinds == {"confirmed_deposit_reverted", "reconciliation_discrepancy"}

    again = await reconcile(audit_settings, db)  # nothing to do twice
    assert again["repairs"]["reverted"] == 0
    assert [e[0] for e in await harness.events()].count("deposit.reverted") == 1
    assert reported(again, "not_canonical") == []


async def test_a_tampered_amount_is_a_mismatch(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    deposit_id = await confirmed_deposit(harness, "tampered", 5 * USDT)
    async with db.write() as conn:
        await conn.execute(
            update(deposit).where(deposit.c.id == deposit_id).values(amount=50 * USDT)
        )
    report = await reconcile(audit_settings, db)
    [item] = reported(report, "mismatch")
    assert item["depositId"] == deposit_id
    assert f"amount on chain {5 * USDT}, recorded {50 * USDT}" in item["detail"]
    assert report["discrepancies"] >= 1
    [raised] = await firing(db, "reconciliation_discrepancy")
    assert raised["severity"] == "critical"


async def test_a_cursor_moved_past_blocks_by_hand_is_a_gap_that_gets_rescanned(
    harness: Harness, audit_settings: Settings, db: Database
) -> None:
    await harness.poll()
    before = anvil.block_number(harness.devnet.url)
    address = await harness.bind("skipped")
    harness.send(address, 3 * USDT)  # lands inside the blocks the cursor will skip
    harness.mine(5)
    skipped_to = anvil.block_number(harness.devnet.url)
    hash_at = anvil.rpc(harness.devnet.url, "eth_getBlockByNumber", [hex(skipped_to), False])
    async with db.write() as conn:
        await conn.execute(
            update(chain_cursor).values(
                block_number=skipped_to, block_hash=hash_at["hash"], head=skipped_to
            )
        )
    harness.mine(CONFIRMATIONS)
    await harness.poll()  # the watcher carries on from the moved cursor, unaware
    assert await harness.deposits() == []

    report = await reconcile(audit_settings, db)
    [gap] = reported(report, "coverage_gap")
    assert gap["blockNumber"] == before + 1
    assert f"blocks {before + 1}-{skipped_to}" in gap["detail"]
    [row] = await harness.deposits()
    assert row["amount"] == 3 * USDT
    assert (await reconcile(audit_settings, db))["counts"]["coverage_gap"] == 0
    await harness.poll()
    assert (await harness.deposits())[0]["status"] == "confirmed"


async def test_an_unknown_chain_is_refused(audit_settings: Settings, db: Database) -> None:
    from pool.kit.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="not a watched chain: nope"):
        await reconcile(audit_settings, db, chain_ids=["nope"])


async def test_a_dead_rpc_endpoint_leaves_the_chain_unverified_but_reports_the_rest(
    harness: Harness, audit_settings: Settings, db: Database, devnet: Devnet
) -> None:
    await confirmed_deposit(harness, "offline")
    dead = settings_with_rpc(audit_settings, devnet, ["http://127.0.0.1:9"])
    report = await reconcile(dead, db)
    error = report["chains"]["devnet"]["error"]
    assert error.startswith("no RPC endpoint could serve: http://127.0.0.1:9: ")
    assert report["chains"]["devnet"]["verifiedOnChain"] == 0
    assert report["counts"]["no_receiver"] == 1  # the database side still ran


async def test_a_dead_first_endpoint_is_set_aside_and_the_next_one_verifies(
    harness: Harness, audit_settings: Settings, db: Database, devnet: Devnet
) -> None:
    await confirmed_deposit(harness, "failover")
    report = await reconcile(
        settings_with_rpc(audit_settings, devnet, ["http://127.0.0.1:9", devnet.url]), db
    )
    assert report["chains"]["devnet"]["error"] is None
    assert report["chains"]["devnet"]["endpoint"] == devnet.url
    assert report["chains"]["devnet"]["verifiedOnChain"] == 1


def settings_with_rpc(settings: Settings, devnet: Devnet, urls: list[str]) -> Settings:
    chain = ChainSettings(**{**chain_settings(devnet), "rpc_urls": urls, "rpc_timeout": 1})
    return settings.model_copy(update={"chains": {"devnet": chain}})


async def _deliveries(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(select(delivery))).all()]
