"""A receiver that answers again gets its backlog at once (pool.webhooks.recovery), against a
real local HTTP receiver: deliveries waiting out a long backoff are made due by the next
success, a delivery under a worker's lease is left alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import delivery
from pool.webhooks.delivery import LEASE, DeliveryWorker
from tests.pool.webhooks.test_delivery import deliver_all, deliveries, emit, endpoint


async def backing_off(db: Database, delivery_id: str, wait: timedelta) -> None:
    """As after many failures: its next attempt `wait` from now."""
    async with db.write() as conn:
        await conn.execute(
            update(delivery)
            .where(delivery.c.id == delivery_id)
            .values(next_attempt_at=utc_now() + wait)
        )


async def test_a_success_makes_the_endpoints_backlog_due_at_once(
    db: Database, settings: Settings, receivers
) -> None:
    receiver = receivers((503, {}, 0.0), (200, {}, 0.0))
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db, data={"depositId": "dep_old", "amount": "1"})
    worker = DeliveryWorker(db, settings)
    await deliver_all(worker)  # 503: the receiver is down
    [old] = await deliveries(db)
    assert (old["status"], old["attempts"]) == ("pending", 1)
    await backing_off(db, old["id"], timedelta(hours=1))

    await emit(db, data={"depositId": "dep_new", "amount": "1"})
    await deliver_all(worker)  # the new one lands: the receiver is back
    await deliver_all(worker)  # and the old one with it, not in an hour
    assert [(d["status"], d["attempts"]) for d in await deliveries(db)] == [
        ("succeeded", 2),
        ("succeeded", 1),
    ]
    assert len(receiver.requests) == 3


async def test_a_worker_that_saw_no_failure_looks_once_a_minute(
    db: Database, settings: Settings, receivers
) -> None:
    """Another worker saw the failures: this one's first success to the endpoint still looks."""
    receiver = receivers((200, {}, 0.0))
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db, data={"depositId": "dep_old", "amount": "1"})
    await emit(db, data={"depositId": "dep_new", "amount": "1"})
    old, _ = await deliveries(db)
    await backing_off(db, old["id"], timedelta(hours=1))
    fresh = DeliveryWorker(db, settings)
    await deliver_all(fresh)  # only the new one is due; its success looks for a backlog
    await deliver_all(fresh)
    assert [d["status"] for d in await deliveries(db)] == ["succeeded", "succeeded"]

    await emit(db, data={"depositId": "dep_third", "amount": "1"})
    _, _, third = await deliveries(db)
    await emit(db, data={"depositId": "dep_fourth", "amount": "1"})
    await backing_off(db, third["id"], timedelta(hours=1))
    await deliver_all(fresh)  # looked less than a minute ago, saw no failure since
    await deliver_all(fresh)
    assert [d["status"] for d in await deliveries(db)][2:] == ["pending", "succeeded"]


async def test_a_delivery_under_a_lease_is_not_made_due(
    db: Database, settings: Settings, receivers
) -> None:
    """Another worker is sending it: its lease stands, or two attempts would overlap."""
    receiver = receivers((503, {}, 0.0), (200, {}, 0.0))
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db, data={"depositId": "dep_leased", "amount": "1"})
    worker = DeliveryWorker(db, settings)
    await deliver_all(worker)  # 503
    [leased] = await deliveries(db)
    await backing_off(db, leased["id"], LEASE)  # as a fresh claim leaves it
    await emit(db, data={"depositId": "dep_new", "amount": "1"})
    await deliver_all(worker)
    leased_after, new = await deliveries(db)
    assert new["status"] == "succeeded"
    assert leased_after["status"] == "pending"
    assert leased_after["next_attempt_at"] > utc_now() + LEASE / 2  # not made due
