"""Migration 0017: keys and webhook endpoints made before orders keep working with orders."""

from __future__ import annotations

from sqlalchemy import insert, select

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.migrate import current_revision, downgrade, head_revision, upgrade
from pool.kit.tables import api_key, webhook_endpoint, webhook_subscription

BEFORE_ORDERS = (
    "deposit.pending",
    "deposit.confirmed",
    "deposit.reverted",
    "deposit.address_bound",
    "deposit.address_unbound",
    "alert.address_pool_low",
)
ORDER_EVENTS = {
    "order.created",
    "order.completed",
    "order.expired",
    "order.cancelled",
    "order.paid_late",
    "order.payment_mismatch",
    "order.reverted",
}


async def _old_key(conn, n: int, scopes: str) -> None:
    await conn.execute(
        insert(api_key).values(
            id=n, name=f"k{n}", prefix="pk_test_0000", key_hash=f"{n:064x}", scopes=scopes,
            created_at=utc_now(),
        )
    )  # fmt: skip


async def _old_endpoint(conn, endpoint_id: str, events) -> None:
    now = utc_now()
    await conn.execute(
        insert(webhook_endpoint).values(
            id=endpoint_id, url="https://hooks.example/in", secret_encrypted="x",
            signature_scheme="body", enabled=True, created_at=now, updated_at=now,
        )
    )  # fmt: skip
    for event_type in events:
        await conn.execute(
            insert(webhook_subscription).values(endpoint_id=endpoint_id, event_type=event_type)
        )


async def test_keys_and_endpoints_from_before_orders_gain_orders(db: Database) -> None:
    await downgrade(db, "0016")
    async with db.write() as conn:
        await _old_key(conn, 1, "deposits:read deposits:write")
        await _old_key(conn, 2, "deposits:read pool:read")
        await _old_key(conn, 3, "pool:write")
        await _old_key(conn, 4, "admin")
        await _old_key(conn, 5, "deposits:write orders:write")
        await _old_endpoint(conn, "we_all", BEFORE_ORDERS)
        await _old_endpoint(conn, "we_some", ("deposit.confirmed", "deposit.pending"))
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    async with db.read() as conn:
        scopes = dict((await conn.execute(select(api_key.c.id, api_key.c.scopes))).all())
        subscriptions = (await conn.execute(select(webhook_subscription))).all()
    assert scopes == {
        1: "deposits:read deposits:write orders:read orders:write",
        2: "deposits:read orders:read pool:read",
        3: "pool:write",
        4: "admin",
        5: "deposits:write orders:write",
    }
    by_endpoint: dict[str, set[str]] = {}
    for endpoint_id, event_type in subscriptions:
        by_endpoint.setdefault(endpoint_id, set()).add(event_type)
    assert by_endpoint["we_all"] == set(BEFORE_ORDERS) | ORDER_EVENTS
    assert by_endpoint["we_some"] == {"deposit.confirmed", "deposit.pending"}
