"""When the worker claims, renews and refills (pool/webhooks/delivery.py), against real receivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import update

from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import delivery
from pool.webhooks import claims_repository as claims
from pool.webhooks import delivery as delivery_module
from pool.webhooks.delivery import HELD_PER_ENDPOINT, UNRENEWED, DeliveryWorker
from tests.pool.webhooks.test_delivery import Receiver, deliver_all, deliveries, emit, endpoint


async def claim_one(db: Database, endpoint_id: str, lease: timedelta) -> claims.Claimed:
    now = utc_now()
    async with db.write() as conn:
        [claimed] = await claims.claim_due(
            conn, endpoint_id=endpoint_id, now=now, lease_until=now + lease, limit=1
        )
    return claimed


@dataclass
class AgedClaim:
    """A pending delivery to a live receiver, claimed with a lease that has passed UNRENEWED."""

    receiver: Receiver
    endpoint_id: str
    claimed: claims.Claimed


async def aged_claim(
    db: Database, settings: Settings, receivers: Callable[..., Receiver]
) -> AgedClaim:
    receiver = receivers()
    endpoint_id, _ = await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db)
    claimed = await claim_one(db, endpoint_id, UNRENEWED - timedelta(seconds=5))
    return AgedClaim(receiver, endpoint_id, claimed)


async def deliver_as_its_holder(db: Database, settings: Settings, aged: AgedClaim) -> None:
    """Sends the claim as the worker that took it would: holding one slot of its endpoint."""
    worker = DeliveryWorker(db, settings)
    worker._held[aged.endpoint_id] = 1
    await worker._deliver_limited(aged.claimed)


async def test_a_fresh_claim_is_sent_without_renewing_its_lease(
    db: Database, settings: Settings, receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewals: list[str] = []

    async def counted(conn, *, delivery_id, held_until, new_until) -> bool:  # type: ignore[no-untyped-def]
        renewals.append(delivery_id)
        return True

    monkeypatch.setattr(claims, "renew_lease", counted)
    receiver = receivers()
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db)
    await deliver_all(DeliveryWorker(db, settings))
    assert len(receiver.requests) == 1
    assert renewals == []


async def test_an_aged_claim_taken_by_another_worker_is_not_sent(
    db: Database, settings: Settings, receivers
) -> None:
    aged = await aged_claim(db, settings, receivers)
    async with db.write() as conn:  # its lease ran out and another worker claimed it
        await conn.execute(
            update(delivery).values(next_attempt_at=utc_now() + timedelta(seconds=60))
        )
    await deliver_as_its_holder(db, settings, aged)
    assert aged.receiver.requests == []
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("pending", 0)


async def test_an_aged_claim_still_ours_is_renewed_and_sent(
    db: Database, settings: Settings, receivers
) -> None:
    aged = await aged_claim(db, settings, receivers)
    await deliver_as_its_holder(db, settings, aged)
    assert len(aged.receiver.requests) == 1
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("succeeded", 1)


async def test_a_backlog_is_refilled_as_sends_finish_not_on_a_timer(
    db: Database, settings: Settings, receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the idle wait made 30 s, three endpoint-fulls still go out at once: the worker
    claims more when an endpoint runs low, not when a timer says so."""
    monkeypatch.setattr(delivery_module, "IDLE_SECONDS", 30.0)
    receiver = receivers()
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    for n in range(3 * HELD_PER_ENDPOINT):
        await emit(db, data={"depositId": f"dep_{n}"})
    worker, stop = DeliveryWorker(db, settings), asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    started = time.monotonic()
    try:
        while {row["status"] for row in await deliveries(db)} != {"succeeded"}:
            assert time.monotonic() - started < 15, "refill waited for the idle timer"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(run, timeout=15)
    assert len(receiver.requests) == 3 * HELD_PER_ENDPOINT


async def test_stopping_hands_back_queued_claims_instead_of_sending_them(
    db: Database, settings: Settings, receivers
) -> None:
    """A slow endpoint's queue is not worked off after stop: requests under way finish, the
    rest are released for the next worker at once (not after their lease)."""
    slow = receivers((200, {}, 0.5))
    await endpoint(db, settings, slow.url, ["deposit.pending"])
    for n in range(3 * delivery_module.PER_ENDPOINT):
        await emit(db, data={"depositId": f"dep_{n}"})
    worker, stop = DeliveryWorker(db, settings), asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    started = time.monotonic()
    while not slow.requests:
        assert time.monotonic() - started < 5
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(run, timeout=5)
    assert len(slow.requests) == delivery_module.PER_ENDPOINT  # only those under way
    rows = await deliveries(db)
    handed_back = [row for row in rows if row["attempts"] == 0]
    assert len(handed_back) == 2 * delivery_module.PER_ENDPOINT
    assert all(row["status"] == "pending" for row in handed_back)
    assert all(row["next_attempt_at"] <= utc_now() for row in handed_back)  # due again now


async def test_one_claim_serves_several_endpoints_each_up_to_its_room(
    db: Database, settings: Settings
) -> None:
    first, _ = await endpoint(db, settings, "http://127.0.0.1:9/a", ["deposit.pending"])
    second, _ = await endpoint(db, settings, "http://127.0.0.1:9/b", ["deposit.pending"])
    for n in range(5):
        await emit(db, data={"depositId": f"dep_{n}"})
    now = utc_now()
    lease = now + timedelta(seconds=60)
    async with db.write() as conn:
        claimed = await claims.claim_for_endpoints(
            conn, rooms={first: 3, second: 1}, now=now, lease_until=lease
        )
    by_endpoint = {e: [c for c in claimed if c.endpoint_id == e] for e in (first, second)}
    assert [len(by_endpoint[first]), len(by_endpoint[second])] == [3, 1]
    seqs = [c.event_seq for c in by_endpoint[first]]
    assert seqs == sorted(seqs) and seqs[0] == min(c.event_seq for c in claimed)  # oldest first
    assert all(c.lease_until == lease for c in claimed)
    async with db.write() as conn:  # leased: a second claim gets only what is left
        again = await claims.claim_for_endpoints(
            conn, rooms={first: 10, second: 10}, now=utc_now(), lease_until=lease
        )
    assert {c.delivery_id for c in again}.isdisjoint({c.delivery_id for c in claimed})
    assert len(again) == 10 - len(claimed)
