"""Upstream mode's orders through the API, both databases: created and cancelled at PayIn (a
scripted one, answering with an address of its choosing), checked and recorded here
(pool/upstream/orders.py; docs/operations.md, Upstream mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select, update

from pool.bindings import service as binding_service
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address, alert, event, payment_order
from tests.api.test_orders_lifecycle_api import link_payment
from tests.api.test_upstream_answers import Front, assert_code, front
from tests.fixtures.helpers import load_pool, random_evm_address
from tests.fixtures.orders import ORDER_CHAINS, order_body
from tests.fixtures.payin import ScriptedPayIn, payins_order, refusal, scripted_payin


@pytest.fixture
async def payin() -> AsyncIterator[ScriptedPayIn]:
    with scripted_payin() as server:
        yield server


@pytest.fixture
async def caller(db: Database, database_url: str, payin: ScriptedPayIn) -> AsyncIterator[Front]:
    settings = {"chains": ORDER_CHAINS, "cooldown": "P7D", "webhook_allow_private": True}
    async with front(db, database_url, payin.url, "pk_test_upstream", **settings) as it:
        yield it


async def state(db: Database) -> dict[str, Any]:
    async with db.read() as conn:
        count = select(func.count())
        return {
            "orders": await conn.scalar(count.select_from(payment_order)),
            "order_events": list(
                (
                    await conn.execute(
                        select(event.c.type)
                        .where(event.c.type.like("order.%"))
                        .order_by(event.c.seq)
                    )
                ).scalars()
            ),
            "allocated": await conn.scalar(
                count.select_from(address).where(address.c.status == "allocated")
            ),
        }


async def alerts(db: Database) -> set[tuple[str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(alert.c.kind, alert.c.severity).where(alert.c.state == "firing")
        )
        return {(kind, severity) for kind, severity in rows.all()}


async def address_status(db: Database, text: str) -> tuple[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(address.c.status, address.c.cooldown_until).where(address.c.address == text)
            )
        ).one()
        return row[0], row[1]


async def test_an_order_payin_created_at_our_address_is_recorded_here(
    db: Database, caller: Front, payin: ScriptedPayIn
) -> None:
    pool = await load_pool(db, "evm", 3)
    answered = payins_order("o1", pool[1].lower())  # PayIn's own spelling of our address
    payin.answer(201, answered, "Order created successfully")
    body = order_body("o1", metadata={"cart": 7})
    created = await caller.create_order(body)
    assert created.status_code == 201, created.text
    order = created.json()["data"]
    assert (order["orderId"], order["address"], order["status"]) == (
        answered["orderId"],
        pool[1],
        "pending",
    )
    assert (order["amount"], order["gracePeriodEndsAt"]) == ("10.5", answered["expiresAt"])
    assert payin.requests == [("POST", "/api/v1/orders", body)]  # the client's request, as sent
    assert await state(db) == {"orders": 1, "order_events": ["order.created"], "allocated": 1}
    assert (await address_status(db, pool[1]))[0] == "allocated"

    # The same request again: PayIn answers its existing order, nothing new here.
    payin.answer(200, answered, "Order already exists")
    again = await caller.create_order(body)
    assert (again.status_code, again.json()["data"]["orderId"]) == (200, answered["orderId"])
    assert await state(db) == {"orders": 1, "order_events": ["order.created"], "allocated": 1}
    shown = await caller.http.get(f"/api/v1/orders/{answered['orderId']}", headers=caller.headers)
    assert shown.json()["data"]["address"] == pool[1]  # reads answer from the local record


@pytest.mark.parametrize("where", ["not ours", "archived", "held by another order"])
async def test_an_address_an_order_cannot_use_is_refused_and_alerted(
    db: Database, caller: Front, payin: ScriptedPayIn, where: str
) -> None:
    pool = await load_pool(db, "evm", 2)
    at = random_evm_address() if where == "not ours" else pool[0]
    if where == "archived":
        async with db.write() as conn:
            await conn.execute(
                update(address).where(address.c.address == at).values(status="archived")
            )
    if where == "held by another order":
        payin.answer(201, payins_order("first", at))
        assert (await caller.create_order(order_body("first"))).status_code == 201
    before = await state(db)
    payin.answer(201, payins_order("o2", at))
    refused = await caller.create_order(order_body("o2"))
    assert_code(refused, 502, "UPSTREAM_ADDRESS_UNKNOWN")
    assert at in refused.json()["message"]
    assert await state(db) == before  # nothing recorded
    assert ("upstream_address_unknown", "critical") in await alerts(db)


@pytest.mark.parametrize(
    "changed",
    [
        {"amount": "10.4"},
        {"currency": "USDC"},
        {"orderReference": "someone-else"},
        {"orderId": "not-an-order-id"},
        {"expiresAt": "2000-01-01T00:00:00Z"},
    ],
)
async def test_an_answer_for_another_order_is_refused(
    db: Database, caller: Front, payin: ScriptedPayIn, changed: dict[str, Any]
) -> None:
    pool = await load_pool(db, "evm", 1)
    payin.answer(201, payins_order("o1", pool[0], **changed))
    assert_code(await caller.create_order(order_body("o1")), 502, "UPSTREAM_ANSWER_INVALID")
    assert await state(db) == {"orders": 0, "order_events": [], "allocated": 0}
    assert await alerts(db) == set()


async def test_payin_down_is_503_and_nothing_is_recorded(
    db: Database, caller: Front, payin: ScriptedPayIn
) -> None:
    await load_pool(db, "evm", 1)
    payin.status, payin.body = 500, refusal("InternalError", "INTERNAL_ERROR")
    assert_code(await caller.create_order(order_body("o1")), 503, "UPSTREAM_UNAVAILABLE")
    payin.close()  # and gone altogether
    assert_code(await caller.create_order(order_body("o1")), 503, "UPSTREAM_UNAVAILABLE")
    assert await state(db) == {"orders": 0, "order_events": [], "allocated": 0}


async def test_a_request_refused_here_never_reaches_payin(
    db: Database, caller: Front, payin: ScriptedPayIn
) -> None:
    await load_pool(db, "evm", 1)
    refused = await caller.create_order(order_body("o1", chainId="polygon-amoy"))
    assert_code(refused, 400, "INVALID_CHAIN")  # not watched here: its payment never seen
    assert_code(await caller.create_order(order_body("o1", amount="1.1234567")), 400,
                "INVALID_AMOUNT")  # fmt: skip
    assert payin.requests == []


async def test_cancel_is_forwarded_then_ends_the_order_here(
    db: Database, caller: Front, payin: ScriptedPayIn
) -> None:
    pool = await load_pool(db, "evm", 1)
    answered = payins_order("o1", pool[0])
    payin.answer(201, answered)
    assert (await caller.create_order(order_body("o1"))).status_code == 201
    order_id = answered["orderId"]

    payin.status, payin.body = 409, refusal("Conflict", "ORDER_NOT_CANCELLABLE")
    assert_code(await caller.cancel_order(order_id), 409, "ORDER_NOT_CANCELLABLE")
    assert (await state(db))["order_events"] == ["order.created"]  # PayIn said no: still pending

    payin.answer(200, {**answered, "status": "cancelled"}, "Order cancelled")
    cancelled = await caller.cancel_order(order_id)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    assert payin.requests[-1] == ("POST", f"/api/v1/orders/{order_id}/cancel", None)
    assert (await state(db))["order_events"] == ["order.created", "order.cancelled"]
    status, cooldown_until = await address_status(db, pool[0])
    assert status == "available" and cooldown_until > utc_now()  # cooling down, as locally
    again = await caller.cancel_order(order_id)  # retried: PayIn and we agree it is cancelled
    assert again.status_code == 200
    assert (await state(db))["order_events"] == ["order.created", "order.cancelled"]


async def test_a_payment_we_saw_refuses_the_cancel_before_payin_is_asked(
    db: Database, caller: Front, payin: ScriptedPayIn
) -> None:
    pool = await load_pool(db, "evm", 1)
    answered = payins_order("o1", pool[0])
    payin.answer(201, answered)
    order = (await caller.create_order(order_body("o1"))).json()["data"]
    await link_payment(db, order, n=1, amount=1_000_000, status="pending")
    asked = len(payin.requests)
    assert_code(await caller.cancel_order(order["orderId"]), 409, "ORDER_NOT_CANCELLABLE")
    assert len(payin.requests) == asked


async def test_a_binding_we_still_record_on_payins_order_address_ends_here(
    db: Database, caller: Front, payin: ScriptedPayIn
) -> None:
    """PayIn is the authority: it gave the address to an order, so its binding ended there."""
    [held] = await load_pool(db, "evm", 1)

    async def bind(conn: Any) -> Any:
        return await binding_service.bind(
            conn, reference="user-1", protocol="evm", metadata=None, actor="t", now=utc_now()
        )

    await db.run_write(bind)
    payin.answer(201, payins_order("o1", held))
    assert (await caller.create_order(order_body("o1"))).status_code == 201
    assert (await address_status(db, held))[0] == "allocated"
    async with db.read() as conn:
        kinds = list((await conn.execute(select(event.c.type).order_by(event.c.seq))).scalars())
    assert kinds == ["deposit.address_bound", "deposit.address_unbound", "order.created"]
