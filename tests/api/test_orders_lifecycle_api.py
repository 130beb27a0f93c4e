"""Cancel, list, stats and events of orders (docs/api.md, Orders), both databases."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address, deposit, event, payment_order
from pool.orders.ending import end_order
from pool.vocabulary import COMPLETED, EXPIRED
from tests.fixtures.helpers import auth, load_pool
from tests.fixtures.orders import order_body

ORDERS = "/api/v1/orders"


async def _create(client, key: str, **fields) -> dict:
    response = await client.post(ORDERS, json=order_body(**fields), headers=auth(key))
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def link_payment(
    db: Database, order: dict, *, n: int, amount: int, status: str, role: str = "payment"
) -> None:
    """A transfer to the order's address, linked as the watcher's ledger links it."""
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(payment_order.c.address_id, payment_order.c.created_at).where(
                    payment_order.c.id == order["orderId"]
                )
            )
        ).one()
        await conn.execute(
            insert(deposit).values(
                id=f"dep_{n}",
                chain_id=order["chainId"],
                tx_hash="0x" + f"{n:064x}",
                log_index=0,
                block_number=100 + n,
                block_hash="0x" + "cd" * 32,
                from_address="0x" + "2" * 40,
                address_id=row.address_id,
                token_contract="0x" + "22" * 20,
                currency=order["currency"],
                amount=amount,
                decimals=6,
                status=status,
                detected_at=utc_now(),
                block_time=row.created_at,
                order_id=order["orderId"],
                order_role=role,
            )
        )


async def _end(db: Database, order: dict, status, completed_by: str | None = None) -> None:
    async with db.write() as conn:
        address_id = await conn.scalar(
            select(payment_order.c.address_id).where(payment_order.c.id == order["orderId"])
        )
        assert await end_order(
            conn,
            order_id=order["orderId"],
            address_id=address_id,
            status=status,
            now=utc_now(),
            cooldown=timedelta(minutes=30),
            completed_by=completed_by,
        )


async def test_cancel_a_pending_order_releases_its_address_into_cooldown(
    orders_client, db: Database, service_key
) -> None:
    await load_pool(db, "evm", 2)
    order = await _create(orders_client, service_key)
    await link_payment(db, order, n=1, amount=1, status="dust")  # dust is no payment
    await link_payment(db, order, n=2, amount=5, status="reverted")  # gone from the chain
    response = await orders_client.post(
        f"{ORDERS}/{order['orderId']}/cancel", headers=auth(service_key)
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "cancelled" and data["cancelledAt"] is not None
    async with db.read() as conn:
        stored = (
            await conn.execute(
                select(address.c.status, address.c.cooldown_until, address.c.last_reference).where(
                    address.c.address == order["address"]
                )
            )
        ).one()
        types = (await conn.execute(select(event.c.type).order_by(event.c.seq))).scalars().all()
    assert stored.status == "available" and stored.last_reference is None
    assert stored.cooldown_until > utc_now() + timedelta(minutes=29)
    assert [t for t in types if t.startswith("order.")] == ["order.created", "order.cancelled"]
    again = await orders_client.post(
        f"{ORDERS}/{order['orderId']}/cancel", headers=auth(service_key)
    )
    assert again.status_code == 200 and again.json()["data"] == data
    async with db.read() as conn:
        after = (await conn.execute(select(event.c.type))).scalars().all()
    # The repeated cancel wrote nothing (the pool-low alert may add its own event any time).
    assert [t for t in after if t.startswith("order.")] == ["order.created", "order.cancelled"]


@pytest.mark.parametrize("status", ["pending", "confirmed", "completed"])
async def test_an_order_with_a_payment_on_chain_is_not_cancellable(
    orders_client, db: Database, service_key, status
) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key)
    await link_payment(db, order, n=1, amount=1_000_000, status=status)
    response = await orders_client.post(
        f"{ORDERS}/{order['orderId']}/cancel", headers=auth(service_key)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "ORDER_NOT_CANCELLABLE"
    shown = await orders_client.get(f"{ORDERS}/{order['orderId']}", headers=auth(service_key))
    assert shown.json()["data"]["status"] == "pending"


@pytest.mark.parametrize("ended", [COMPLETED, EXPIRED])
async def test_an_ended_order_is_not_cancellable(
    orders_client, db: Database, service_key, ended
) -> None:
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key)
    await _end(db, order, ended)
    response = await orders_client.post(
        f"{ORDERS}/{order['orderId']}/cancel", headers=auth(service_key)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "ORDER_NOT_CANCELLABLE"
    assert ended in response.json()["message"]


async def test_list_filters_and_pages(orders_client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 6)
    await load_pool(db, "tron", 2)
    made = [await _create(orders_client, service_key, reference=f"o{n}") for n in range(4)]
    made.append(await _create(orders_client, service_key, reference="bsc", chainId="bsc-testnet"))
    made.append(
        await _create(orders_client, service_key, reference="tron", chainId="tron-nile", amount="3")
    )
    await _end(db, made[0], EXPIRED)
    h = auth(service_key)

    async def ids(query: str) -> list[str]:
        response = await orders_client.get(f"{ORDERS}?{query}", headers=h)
        assert response.status_code == 200, response.text
        return [o["orderReference"] for o in response.json()["data"]["orders"]]

    assert await ids("") == ["tron", "bsc", "o3", "o2", "o1", "o0"]  # newest first
    assert await ids("status=expired") == ["o0"]
    assert await ids("status=pending,expired&chainId=ethereum-sepolia") == [
        "o3",
        "o2",
        "o1",
        "o0",
    ]
    assert await ids("chainId=tron-nile") == ["tron"]
    assert await ids("currency=USDT&chainId=bsc-testnet") == ["bsc"]
    assert await ids("orderReference=o2") == ["o2"]
    page = await orders_client.get(f"{ORDERS}?limit=4&page=2", headers=h)
    assert [o["orderReference"] for o in page.json()["data"]["orders"]] == ["o1", "o0"]
    assert page.json()["data"]["pagination"] == {
        "page": 2,
        "limit": 4,
        "total": 6,
        "totalPages": 2,
    }
    later = utc_now() + timedelta(minutes=1)
    assert await ids(f"createdAfter={later.isoformat().replace('+00:00', 'Z')}") == []
    assert len(await ids(f"createdBefore={later.strftime('%Y-%m-%dT%H:%M:%S')}")) == 6
    for bad in ("status=paid", "status=", "limit=0", "createdAfter=yesterday"):
        response = await orders_client.get(f"{ORDERS}?{bad}", headers=h)
        assert response.status_code == 400, bad
        assert response.json()["code"] == "VALIDATION_FAILED"


async def test_stats(orders_client, db: Database, service_key) -> None:
    await load_pool(db, "evm", 6)
    empty = await orders_client.get(f"{ORDERS}/stats", headers=auth(service_key))
    assert empty.json()["data"] == {
        "totalOrders": 0,
        "pendingOrders": 0,
        "completedOrders": 0,
        "expiredOrders": 0,
        "cancelledOrders": 0,
        "completedAmount": {},
        "receivedAmount": {},
        "avgPaymentTimeSeconds": None,
        "byChain": {},
        "byCurrency": {},
    }
    paid = await _create(orders_client, service_key, reference="paid", amount="10")
    over = await _create(orders_client, service_key, reference="over", amount="2.5")
    bsc = await _create(
        orders_client, service_key, reference="bsc", amount="1", chainId="bsc-testnet"
    )
    await _create(orders_client, service_key, reference="open", amount="7")
    await link_payment(db, paid, n=1, amount=10_000_000, status="confirmed")
    await link_payment(db, over, n=2, amount=3_000_000, status="completed")
    await _end(db, paid, COMPLETED, "dep_1")
    await _end(db, over, COMPLETED, "dep_2")
    await _end(db, bsc, EXPIRED)
    response = await orders_client.get(f"{ORDERS}/stats", headers=auth(service_key))
    data = response.json()["data"]
    assert {k: data[k] for k in ("totalOrders", "pendingOrders", "completedOrders")} == {
        "totalOrders": 4,
        "pendingOrders": 1,
        "completedOrders": 2,
    }
    assert data["expiredOrders"] == 1 and data["cancelledOrders"] == 0
    assert data["completedAmount"] == {"USDT": "12.5"}
    assert data["receivedAmount"] == {"USDT": "13"}
    assert 0 <= data["avgPaymentTimeSeconds"] < 60
    assert data["byChain"]["bsc-testnet"]["expiredOrders"] == 1
    assert data["byChain"]["ethereum-sepolia"]["completedAmount"] == {"USDT": "12.5"}
    assert data["byCurrency"]["USDT"]["totalOrders"] == 4
    shown = await orders_client.get(f"{ORDERS}/{over['orderId']}", headers=auth(service_key))
    over_now = shown.json()["data"]
    assert over_now["overpaidAmount"] == "0.5" and over_now["remainingAmount"] == "0"
    assert over_now["txHash"] == "0x" + f"{2:064x}"
    assert [t["depositId"] for t in over_now["transfers"]] == ["dep_2"]


async def test_order_created_and_cancelled_reach_a_receiver_signed(
    orders_client, orders_settings, db: Database, service_key, receivers
) -> None:
    from pool.webhooks.delivery import DeliveryWorker
    from pool.webhooks.signatures import sign_body
    from tests.pool.webhooks.test_delivery import deliver_all, endpoint

    receiver = receivers()
    _, secret = await endpoint(
        db, orders_settings, receiver.url, ["order.created", "order.cancelled"]
    )
    await load_pool(db, "evm", 1)
    order = await _create(orders_client, service_key, metadata={"cart": "é"})
    await orders_client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=auth(service_key))
    await deliver_all(DeliveryWorker(db, orders_settings))
    # Deliveries run concurrently: their order of arrival is not the events' order.
    received = {r["type"]: r for r in (json.loads(body) for _, _, body in receiver.requests)}
    assert len(receiver.requests) == 2
    assert set(received) == {"order.created", "order.cancelled"}
    assert received["order.created"]["data"] == order
    assert received["order.cancelled"]["data"]["status"] == "cancelled"
    assert received["order.cancelled"]["data"]["orderId"] == order["orderId"]
    for _, headers, body in receiver.requests:
        assert headers["X-PayIn-Signature"] == sign_body(secret.encode(), body)
