"""Orders in `/metrics` and in the pool's accounting: `addrpool_orders{status}` read from the
database, allocated addresses counted as taken (pool summary, gauges, `pool_low`)."""

from __future__ import annotations

from sqlalchemy import select

from pool.alerts.engine import evaluate_pool
from pool.kit.config import AlertSettings
from pool.kit.db import Database
from pool.kit.tables import alert
from tests.api.test_metrics import database_pool_counts, pool_gauges, scrape, value
from tests.fixtures.helpers import auth, load_pool
from tests.fixtures.orders import order_body

ORDERS = "/api/v1/orders"


async def test_order_gauges_and_allocated_addresses(
    orders_client, db: Database, service_key, admin_key
) -> None:
    await load_pool(db, "evm", 5)
    empty = await scrape(orders_client)
    assert {s: value(empty, "addrpool_orders", status=s) for s in ("pending", "cancelled")} == {
        "pending": 0,
        "cancelled": 0,
    }
    assert ("addrpool_orders", (("status", "expired"),)) in empty  # every status, even at 0
    made = []
    for n in range(3):
        response = await orders_client.post(
            ORDERS, json=order_body(f"o{n}"), headers=auth(service_key)
        )
        made.append(response.json()["data"])
    await orders_client.post(f"{ORDERS}/{made[0]['orderId']}/cancel", headers=auth(service_key))
    samples = await scrape(orders_client)
    assert value(samples, "addrpool_orders", status="pending") == 2
    assert value(samples, "addrpool_orders", status="cancelled") == 1
    assert value(samples, "addrpool_orders", status="completed") == 0
    assert pool_gauges(samples) == await database_pool_counts(db)
    assert pool_gauges(samples)[("evm", "allocated")] == 2
    assert pool_gauges(samples)[("evm", "cooling_down")] == 1
    summary = await orders_client.get(
        "/api/v1/address-pool/availability?protocol=evm", headers=auth(admin_key)
    )
    data = summary.json()["data"]
    assert (data["allocated"], data["available"], data["coolingDown"]) == (2, 2, 1)


async def test_pool_low_counts_allocated_addresses_as_taken(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 4)
    rules = AlertSettings(thresholds={"evm": 3, "tron": 0})
    assert (await evaluate_pool(db, rules, "evm")).healthy
    for n in range(2):
        response = await orders_client.post(
            ORDERS, json=order_body(f"o{n}"), headers=auth(service_key)
        )
        assert response.status_code == 201
    await evaluate_pool(db, rules, "evm")  # 2 free of 4: below 3
    async with db.read() as conn:
        firing = (
            await conn.execute(
                select(alert.c.subject, alert.c.value).where(alert.c.state == "firing")
            )
        ).all()
    assert [(s, v) for s, v in firing if s == "pool_low:evm"] == [("pool_low:evm", "2")]
