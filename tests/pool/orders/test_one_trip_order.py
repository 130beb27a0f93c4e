"""SQLite's order creation in one trip to the writer's thread (pool.orders.one_trip_repository),
as `create_order` makes it: the same rows as the step-by-step creation, all or nothing, and
orders committed together still each get their own address, one order per reference
(invariant 13, docs/design.md)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from pool.kit.clock import utc_now
from pool.kit.config import OrderSettings, Settings
from pool.kit.db import Database
from pool.kit.errors import DuplicateOrderReference, InsufficientAddresses
from pool.kit.secret_box import secret_box
from pool.kit.tables import address, delivery, event, payment_order
from pool.orders import service
from pool.orders.intake import resolve
from pool.orders.records import CreatedOrder, OrderAsk, OrderChain, OrderToken
from pool.webhooks import endpoints as webhooks
from tests.fixtures.helpers import in_one_trip, load_pool, rows_events_free

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
SEPOLIA = "ethereum-sepolia"
CHAINS = {
    SEPOLIA: OrderChain(SEPOLIA, "evm", 12, {"USDT": OrderToken("USDT", "0x" + "22" * 20, 6)})
}
BASE_URL = "https://pay.example"


def _ask(reference: str, amount: str = "10.5", **fields: Any) -> OrderAsk:
    return OrderAsk(reference=reference, amount=amount, currency="USDT", chain_id=SEPOLIA, **fields)


async def _create(db: Database, ask: OrderAsk) -> CreatedOrder:
    return await service.create_order(
        db,
        ask=ask,
        chains=CHAINS,
        settings=OrderSettings(),
        allow_http_urls=False,
        base_url=BASE_URL,
        actor="key:test",
    )


async def _subscribe(db: Database, settings: Settings) -> None:
    async with db.write() as conn:
        await webhooks.create_endpoint(
            conn,
            secret_box(settings),
            url="http://127.0.0.1:9/hook",
            events=["order.created"],
            scheme="body",
            description=None,
            now=utc_now(),
        )


def _rows(db: Database, reference: str) -> dict[str, list[tuple]]:
    """What a creation left in the file, as SQLite stores it (text, not what SQLAlchemy reads),
    bar the order's id, reference and address (different by design)."""
    order = "SELECT o.id, o.order_reference, a.address FROM payment_order o"
    order += " JOIN address a ON a.id = o.address_id WHERE o.order_reference = ?"
    queries = {
        "order": "SELECT protocol, chain_id, currency, token_contract, decimals, amount,"
        " typeof(amount), status, required_confirmations, metadata, success_url, cancel_url,"
        " replace(payment_url, id, 'ID'), created_at, typeof(created_at), window_ends_at,"
        " grace_ends_at, completed_at, expired_at, cancelled_at, completed_by, created_by"
        " FROM payment_order WHERE id = $id",
        "address": "SELECT a.status, a.last_reference, a.recycled_at, a.cooldown_until"
        " FROM address a WHERE a.address = $addr",
        # The payload's own text (key order, number and string forms), bar what differs.
        "event": "SELECT type, replace(replace(replace(data, $id, 'ID'), $ref, 'REF'), $addr,"
        " 'ADDRESS'), created_at FROM event WHERE json_extract(data, '$.orderId') = $id",
        "delivery": "SELECT d.status, d.attempts, d.next_attempt_at, d.retry_from, d.created_at"
        " FROM delivery d JOIN event e ON e.seq = d.event_seq"
        " WHERE json_extract(e.data, '$.orderId') = $id",
    }
    with sqlite3.connect(db.url.database) as connection:
        (row,) = connection.execute(order, (reference,)).fetchall()
        key = dict(zip(("id", "ref", "addr"), row, strict=True))
        return {
            name: connection.execute(q, {k: v for k, v in key.items() if f"${k}" in q}).fetchall()
            for name, q in queries.items()
        }


async def test_the_one_trip_creation_writes_what_the_step_by_step_creation_writes(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_pool(db, "evm", 2)
    await _subscribe(db, settings)
    now: datetime = utc_now()
    monkeypatch.setattr(service, "utc_now", lambda: now)
    fields: dict[str, Any] = {
        "metadata": {"cart": 7, "big": 2**70, "price": 1.5, "note": "é\u2028", "none": None},
        "success_url": "https://shop.example/ok?x=1",
        "window_minutes": 45,
    }
    trip = await _create(db, _ask("ref_trip_a", "1234.000001", **fields))
    assert trip.created

    resolved = resolve(
        _ask("ref_steps_b", "1234.000001", **fields),
        chains=CHAINS,
        settings=OrderSettings(),
        allow_http=False,
    )

    async def step_by_step(conn):  # noqa: ANN001, ANN202
        return await service._create(conn, resolved, base_url=BASE_URL, actor="key:test")

    steps = await db.run_write(step_by_step)
    assert steps.created
    trip_rows, step_rows = _rows(db, "ref_trip_a"), _rows(db, "ref_steps_b")
    assert trip_rows == step_rows
    assert len(trip_rows["delivery"]) == 1  # invariant 8: its delivery written with the event
    assert trip_rows["order"][0][14] == "text"
    assert trip_rows["address"] == [("allocated", None, None, None)]
    # The answer is the object the event holds, as a read gives it back.
    async with db.read() as conn:
        assert await service.get_order(conn, trip.order["orderId"]) == trip.order


async def test_a_failure_after_the_claim_keeps_nothing_of_the_creation(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_pool(db, "evm", 2)
    await _create(db, _ask("first"))
    async with db.read() as conn:
        taken = await conn.scalar(select(event.c.id))
    monkeypatch.setattr(service, "new_event_id", lambda: taken)
    with pytest.raises(IntegrityError):  # the event's id is taken: its INSERT fails
        await _create(db, _ask("second"))
    assert await rows_events_free(db, payment_order) == (1, 1, 1)


async def test_orders_committed_together_each_get_their_own_address(db: Database) -> None:
    """One batch holding 40 references, each asked for three times, and a fourth time with
    another amount: one order each, 40 distinct addresses, the repeats answered with the
    order the first one made, the different amount a conflict naming it."""
    await load_pool(db, "evm", 50)
    references = [f"cart_{n}" for n in range(40)]
    asks = [_ask(r) for r in references * 3] + [_ask(r, "11") for r in references]
    results = await in_one_trip(db, [_create(db, ask) for ask in asks])
    by_reference: dict[str, set[tuple[str, str]]] = {}
    for ask, result in zip(asks[:120], results[:120], strict=True):
        by_reference.setdefault(ask.reference, set()).add(
            (result.order["orderId"], result.order["address"])
        )
    assert all(len(found) == 1 for found in by_reference.values())
    assert len({next(iter(found))[1] for found in by_reference.values()}) == 40
    assert Counter(result.created for result in results[:120]) == {True: 40, False: 80}
    for ask, conflict in zip(asks[120:], results[120:], strict=True):
        assert isinstance(conflict, DuplicateOrderReference)
        assert conflict.existing_order_id == next(iter(by_reference[ask.reference]))[0]
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(payment_order)) == 40
        assert await conn.scalar(select(func.count()).select_from(event)) == 40
        assert await conn.scalar(select(func.count()).select_from(delivery)) == 0


async def test_a_batch_larger_than_the_pool_writes_nothing_for_the_refused(db: Database) -> None:
    await load_pool(db, "evm", 10)
    results = await in_one_trip(db, [_create(db, _ask(f"o{n}")) for n in range(15)])
    assert Counter(type(result) for result in results) == {
        CreatedOrder: 10,
        InsufficientAddresses: 5,
    }
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(payment_order)) == 10
        assert await conn.scalar(select(func.count()).select_from(event)) == 10
        free = select(func.count()).select_from(address).where(address.c.status != "allocated")
        assert await conn.scalar(free) == 0
