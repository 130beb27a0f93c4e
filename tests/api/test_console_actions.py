"""The operator console's record pages and actions in process, both databases: each page
with its records, and every action refused without console:write, a reason or the session's
token, done and audited with them (docs/operations.md, The console)."""

from __future__ import annotations

import csv
import io
import re

import httpx
from sqlalchemy import insert, select, update

from pool.alerts.repository import fire_alert
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import audit_log, delivery, delivery_attempt, deposit, event
from pool.reconciliation.repository import save_report
from tests.api.test_console import SAME_ORIGIN, hidden_token, sign_in
from tests.api.test_webhook_replay import write_events
from tests.fixtures.helpers import add_deposit, auth, load_pool, make_key
from tests.fixtures.orders import order_body


async def _delivery(client: httpx.AsyncClient, db: Database, admin_key: str, status: str) -> str:
    """A delivery of a test event to a new endpoint, left `status` after one attempt."""
    endpoint = await client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "events": ["deposit.confirmed"]},
        headers=auth(admin_key),
    )
    endpoint_id = endpoint.json()["data"]["id"]
    sent = await client.post(
        f"/api/v1/webhooks/endpoints/{endpoint_id}/test", headers=auth(admin_key)
    )
    assert sent.status_code == 202, sent.text
    async with db.write() as conn:
        delivery_id = await conn.scalar(
            select(delivery.c.id).where(delivery.c.endpoint_id == endpoint_id)
        )
        code = 200 if status == "succeeded" else 500
        await conn.execute(
            update(delivery)
            .where(delivery.c.id == delivery_id)
            .values(status=status, attempts=1, last_status_code=code, completed_at=utc_now())
        )
        await conn.execute(
            insert(delivery_attempt).values(
                delivery_id=delivery_id,
                attempted_at=utc_now(),
                status_code=code,
                latency_ms=12,
                response_body="<h1>receiver says</h1>" + "x" * 2000,
            )
        )
    return str(delivery_id)


async def _status_of(db: Database, delivery_id: str) -> str:
    async with db.read() as conn:
        return str(await conn.scalar(select(delivery.c.status).where(delivery.c.id == delivery_id)))


async def test_the_webhooks_pages_show_deliveries_and_their_attempts(
    client, db: Database, console_key: str, admin_key: str
) -> None:
    failed = await _delivery(client, db, admin_key, "failed")
    await sign_in(client, console_key)
    listed = await client.get("/ui/webhooks?status=failed")
    assert listed.status_code == 200 and failed in listed.text
    assert "http://127.0.0.1:9/hook" in listed.text
    one = await client.get(f"/ui/webhooks/deliveries/{failed}")
    assert one.status_code == 200 and "500" in one.text
    assert "&lt;h1&gt;receiver says&lt;/h1&gt;" in one.text  # the receiver's answer, escaped
    assert "x" * 300 not in one.text  # an excerpt
    assert "Redeliver" not in one.text  # a read-only key sees no action
    missing = await client.get("/ui/webhooks/deliveries/dlv_nope")
    assert missing.status_code == 404


async def test_a_read_only_key_cannot_act(
    client, db: Database, console_key: str, admin_key: str
) -> None:
    failed = await _delivery(client, db, admin_key, "failed")
    await sign_in(client, console_key)
    page = await client.get("/ui")
    response = await client.post(
        f"/ui/webhooks/deliveries/{failed}/redeliver",
        data={"csrf": hidden_token(page.text), "reason": "customer asked"},
        headers=SAME_ORIGIN,
    )
    assert response.status_code == 403 and "console:write" in response.text
    assert await _status_of(db, failed) == "failed"


async def test_redeliver_sends_a_succeeded_delivery_again_and_records_why(
    client, db: Database, admin_key: str
) -> None:
    succeeded = await _delivery(client, db, admin_key, "succeeded")
    writer = await make_key(db, scopes=["console:read", "console:write"])
    await sign_in(client, writer)
    token = hidden_token((await client.get("/ui")).text)
    url = f"/ui/webhooks/deliveries/{succeeded}/redeliver"
    no_reason = await client.post(url, data={"csrf": token, "reason": " "}, headers=SAME_ORIGIN)
    forged = await client.post(url, data={"csrf": "x", "reason": "r"}, headers=SAME_ORIGIN)
    assert (no_reason.status_code, forged.status_code) == (400, 403)
    assert await _status_of(db, succeeded) == "succeeded"
    done = await client.post(
        url, data={"csrf": token, "reason": "receiver lost its database"}, headers=SAME_ORIGIN
    )
    assert done.status_code == 303 and done.headers["location"].endswith(succeeded)
    assert await _status_of(db, succeeded) == "pending"
    again = await client.post(url, data={"csrf": token, "reason": "twice"}, headers=SAME_ORIGIN)
    assert again.status_code == 409  # pending: on its way already
    async with db.read() as conn:
        [record] = (
            await conn.execute(
                select(audit_log.c.actor, audit_log.c.subject, audit_log.c.details).where(
                    audit_log.c.action == "delivery.redeliver"
                )
            )
        ).all()
    assert record.subject == succeeded and record.actor.startswith("key:")
    assert record.details == {"reason": "receiver lost its database", "via": "console"}
    audit = await client.get("/ui/audit")
    assert "delivery.redeliver" in audit.text and "receiver lost its database" in audit.text


async def test_retry_failed_requeues_only_that_endpoints_failures(
    client, db: Database, admin_key: str
) -> None:
    mine = await _delivery(client, db, admin_key, "failed")
    other = await _delivery(client, db, admin_key, "failed")
    async with db.read() as conn:
        endpoint_id = await conn.scalar(select(delivery.c.endpoint_id).where(delivery.c.id == mine))
    writer = await make_key(db, scopes=["admin"])
    await sign_in(client, writer)
    token = hidden_token((await client.get("/ui")).text)
    done = await client.post(
        f"/ui/webhooks/endpoints/{endpoint_id}/retry-failed",
        data={"csrf": token, "reason": "receiver fixed"},
        headers=SAME_ORIGIN,
    )
    assert done.status_code == 303
    assert (await _status_of(db, mine), await _status_of(db, other)) == ("pending", "failed")


async def _bound_deposits(client: httpx.AsyncClient, db: Database, admin_key: str) -> None:
    """dep_1 and dep_2 to `-tricky` (a reference a spreadsheet would read as a formula),
    dep_3 pending to `user_b`, dep_4 unattributed (its binding taken away)."""
    await load_pool(db, "evm", 3)
    for reference in ("-tricky", "user_b", "user_c"):
        bound = await client.post(
            "/api/v1/deposits/bind",
            json={"depositReference": reference, "protocol": "evm"},
            headers=auth(admin_key),
        )
        assert bound.status_code == 201
    await add_deposit(db, "-tricky", n=1, amount=5_000_000)
    await add_deposit(db, "-tricky", n=2, amount=7_250_000)
    await add_deposit(db, "user_b", n=3, status="pending")
    await add_deposit(db, "user_c", n=4)
    async with db.write() as conn:
        await conn.execute(update(deposit).where(deposit.c.id == "dep_4").values(binding_id=None))


async def test_the_deposits_page_filters_and_exports_what_it_shows(
    client, db: Database, console_key: str, admin_key: str
) -> None:
    await _bound_deposits(client, db, admin_key)
    await sign_in(client, console_key)
    every = await client.get("/ui/deposits")
    assert every.status_code == 200
    assert set(re.findall(r'data-deposit="(dep_\d)"', every.text)) == {
        "dep_1",
        "dep_2",
        "dep_3",
        "dep_4",
    }
    pending = await client.get("/ui/deposits?status=pending")
    assert re.findall(r'data-deposit="(dep_\d)"', pending.text) == ["dep_3"]
    loose = await client.get("/ui/deposits?unattributed=on")
    assert re.findall(r'data-deposit="(dep_\d)"', loose.text) == ["dep_4"]
    future = await client.get("/ui/deposits?from=2999-01-01")
    assert "No deposit matches." in future.text

    exported = await client.get("/ui/deposits.csv?reference=-tricky")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["depositId"] for r in rows) == ["dep_1", "dep_2"]
    assert {r["depositReference"] for r in rows} == {"'-tricky"}  # never a formula
    assert sorted(r["amount"] for r in rows) == ["5", "7.25"]
    signed_out = await httpx.AsyncClient(
        transport=client._transport, base_url="http://addrpool.test"
    ).get("/ui/deposits.csv")
    assert signed_out.status_code == 303  # no session, no export


async def test_every_page_of_the_console_answers_with_its_records(
    orders_client, db: Database, admin_key: str
) -> None:
    """Each page of the navigation, with something in it; unknown records are 404 pages."""
    client = orders_client
    await load_pool(db, "evm", 4)
    bound = await client.post(
        "/api/v1/deposits/bind",
        json={"depositReference": "user_42", "protocol": "evm"},
        headers=auth(admin_key),
    )
    assert bound.status_code == 201
    await add_deposit(db, "user_42", n=1)
    order = await client.post("/api/v1/orders", json=order_body("shop_7"), headers=auth(admin_key))
    order_id = order.json()["data"]["orderId"]
    async with db.write() as conn:
        await save_report(
            conn,
            started_at=utc_now(),
            finished_at=utc_now(),
            since=utc_now(),
            summary={"discrepancies": 1, "counts": {"order_underpaid": 1}},
            items=[
                {
                    "category": "order_underpaid",
                    "severity": "critical",
                    "orderId": order_id,
                    "depositId": None,
                    "chainId": "ethereum-sepolia",
                    "txHash": None,
                    "blockNumber": None,
                    "detail": "completed with 0 of 10.5 USDT",
                },
            ],
        )
        await fire_alert(
            conn,
            kind="watcher_stalled",
            subject="watcher_stalled:ethereum-sepolia",
            severity="critical",
            value="120",
            details=None,
            now=utc_now(),
        )
    await sign_in(client, await make_key(db, scopes=["console:read"]))
    expected = {
        "/ui/deposits": "user_42",
        "/ui/references?search=user": "user_42",
        "/ui/references/user_42?protocol=evm": "Binding history",
        "/ui/orders?status=pending": "shop_7",
        f"/ui/orders/{order_id}": "10.5 USDT on ethereum-sepolia",
        "/ui/alerts?state=firing": "watcher_stalled:ethereum-sepolia",
        "/ui/reconciliation": "completed with 0 of 10.5 USDT",
        "/ui/pool?status=allocated": "allocated",
        "/ui/audit": "console.sign_in",
    }
    for path, shown in expected.items():
        response = await client.get(path)
        assert response.status_code == 200, path
        assert shown in response.text, path
    reconciliation = (await client.get("/ui/reconciliation")).text
    assert f'href="/ui/orders/{order_id}"' in reconciliation
    for missing in ("/ui/orders/ord_nope", "/ui/references/nobody"):
        assert (await client.get(missing)).status_code == 404


async def test_archiving_from_the_console_needs_write_and_a_reason(
    client, db: Database, console_key: str
) -> None:
    [first, *_] = await load_pool(db, "evm", 2)
    await sign_in(client, console_key)
    token = hidden_token((await client.get("/ui/pool")).text)
    form = {
        "csrf": token,
        "protocol": "evm",
        "address": first,
        "action": "archive",
        "reason": "key compromised",
    }
    read_only = await client.post("/ui/pool/archive", data=form, headers=SAME_ORIGIN)
    assert read_only.status_code == 403
    await client.post("/ui/sign-out", data={"csrf": token}, headers=SAME_ORIGIN)
    await sign_in(client, await make_key(db, scopes=["console:read", "console:write"]))
    token = hidden_token((await client.get("/ui/pool")).text)
    bad = await client.post(
        "/ui/pool/archive", data={**form, "csrf": token, "address": "0x123"}, headers=SAME_ORIGIN
    )
    assert bad.status_code == 400
    done = await client.post("/ui/pool/archive", data={**form, "csrf": token}, headers=SAME_ORIGIN)
    assert done.status_code == 303
    archived = await client.get("/ui/pool?status=archived")
    assert first in archived.text
    async with db.read() as conn:
        details = await conn.scalar(
            select(audit_log.c.details).where(audit_log.c.action == "address.archive")
        )
    assert details == {"reason": "key compromised", "via": "console"}


async def test_replaying_from_the_console(client, db: Database, admin_key: str) -> None:
    endpoint = await client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "events": ["deposit.confirmed"]},
        headers=auth(admin_key),
    )
    endpoint_id = endpoint.json()["data"]["id"]
    [event_id] = await write_events(db, "deposit.confirmed")
    async with db.write() as conn:
        await conn.execute(update(delivery).values(status="succeeded", completed_at=utc_now()))
        succeeded = await conn.scalar(
            select(delivery.c.id).where(delivery.c.endpoint_id == endpoint_id)
        )
    await sign_in(client, await make_key(db, scopes=["console:write", "console:read"]))
    page = (await client.get("/ui/webhooks")).text
    assert f'action="/ui/webhooks/endpoints/{endpoint_id}/replay"' in page
    url = f"/ui/webhooks/endpoints/{endpoint_id}/replay"
    form = {"csrf": hidden_token(page), "reason": "receiver restored a backup"}
    bad = await client.post(url, data={**form, "since": "yesterday"}, headers=SAME_ORIGIN)
    assert bad.status_code == 400 and "since must be a moment" in bad.text
    assert await _status_of(db, str(succeeded)) == "succeeded"
    done = await client.post(
        url, data={**form, "from": event_id, "to": event_id}, headers=SAME_ORIGIN
    )
    assert done.status_code == 303
    assert await _status_of(db, str(succeeded)) == "pending"


async def test_an_unclaimed_deposit_is_attributed_or_resolved_from_the_console(
    client, db: Database, admin_key: str
) -> None:
    await _bound_deposits(client, db, admin_key)  # dep_4 is unattributed; user_b is bound
    await add_deposit(db, "user_c", n=5)
    async with db.write() as conn:
        await conn.execute(update(deposit).where(deposit.c.id == "dep_5").values(binding_id=None))
    await sign_in(client, await make_key(db, scopes=["console:read", "console:write"]))
    page = (await client.get("/ui/deposits?unattributed=on")).text
    assert 'action="/ui/deposits/dep_4/attribute"' in page
    token = hidden_token(page)
    credited = await client.post(
        "/ui/deposits/dep_4/attribute",
        data={"csrf": token, "reference": "user_b", "reason": "customer sent a screenshot"},
        headers=SAME_ORIGIN,
    )
    assert credited.status_code == 303
    refunded = await client.post(
        "/ui/deposits/dep_5/resolve",
        data={"csrf": token, "outcome": "refunded", "reason": "sent back in tx 0xabc"},
        headers=SAME_ORIGIN,
    )
    assert refunded.status_code == 303
    unknown = await client.post(
        "/ui/deposits/dep_5/attribute",
        data={"csrf": token, "reference": "user_b", "reason": "again"},
        headers=SAME_ORIGIN,
    )
    assert unknown.status_code == 409  # decided already: refunded
    async with db.read() as conn:
        rows = dict((await conn.execute(select(deposit.c.id, deposit.c.resolution))).all())
        types = (await conn.execute(select(event.c.type, event.c.data))).all()
    assert rows["dep_4"] == "attributed" and rows["dep_5"] == "refunded"
    credited_events = [t for t, data in types if data.get("depositId") == "dep_4"]
    assert "deposit.confirmed" in credited_events
    shown = (await client.get("/ui/deposits?reference=user_b")).text
    assert 'data-deposit="dep_4"' in shown


async def test_alerts_are_acknowledged_and_silenced_from_the_console(client, db: Database) -> None:
    async with db.write() as conn:
        await fire_alert(
            conn,
            kind="watcher_stalled",
            subject="watcher_stalled:ethereum-sepolia",
            severity="critical",
            value="120",
            details=None,
            now=utc_now(),
        )
    await sign_in(client, await make_key(db, scopes=["console:read", "console:write"]))
    page = (await client.get("/ui/alerts")).text
    [alert_id] = re.findall(r'data-alert="(\d+)"', page)
    token = hidden_token(page)
    for action, extra in (("acknowledge", {}), ("silence", {"minutes": "30"})):
        done = await client.post(
            f"/ui/alerts/{alert_id}/{action}",
            data={"csrf": token, "reason": "node provider incident", **extra},
            headers=SAME_ORIGIN,
        )
        assert done.status_code == 303, done.text
    again = await client.post(
        f"/ui/alerts/{alert_id}/acknowledge",
        data={"csrf": token, "reason": "twice"},
        headers=SAME_ORIGIN,
    )
    assert again.status_code == 409
    shown = (await client.get("/ui/alerts")).text
    assert "acknowledged 20" in shown and "silenced until 20" in shown
    async with db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action))).scalars().all()
    assert {"alert.acknowledge", "alert.silence"} <= set(actions)
