"""The delivery worker against real local HTTP receivers (scripted answers, recorded requests)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.secret_box import secret_box
from pool.kit.tables import alert, delivery, delivery_attempt
from pool.webhooks import endpoints as webhooks
from pool.webhooks.body import body_bytes
from pool.webhooks.delivery import DeliveryWorker
from pool.webhooks.outbox import record_event
from pool.webhooks.signatures import sign_body, verify_timestamped
from tests.fixtures.receivers.http import PostReceiver, Reply


class Receiver(PostReceiver):
    """Answers each POST with the next (status, headers, delay); records what it got."""

    def __init__(self, script: list[tuple[int, dict[str, str], float]]) -> None:
        self.script = script
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        super().__init__(self._answer)
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _answer(self, headers: dict[str, str], body: bytes) -> Reply:
        index = min(len(self.requests), len(self.script) - 1)
        self.requests.append((time.monotonic(), headers, body))
        status, reply_headers, delay = self.script[index]
        return Reply(status, reply_headers, delay=delay)


async def endpoint(
    db: Database, settings: Settings, url: str, events: list[str], scheme: str = "body"
) -> tuple[str, str]:
    async with db.write() as conn:
        created, secret = await webhooks.create_endpoint(
            conn,
            secret_box(settings),
            url=url,
            events=events,
            scheme=scheme,  # type: ignore[arg-type]
            description=None,
            now=utc_now(),
        )
    return created.id, secret


async def emit(db: Database, kind: str = "deposit.pending", data: dict | None = None) -> str:
    async with db.write() as conn:
        return await record_event(
            conn, type=kind, data=data or {"depositId": "dep_x", "amount": "1"}, now=utc_now()
        )


async def deliver_all(worker: DeliveryWorker) -> None:
    await worker.run_once()
    await worker.drain()


async def make_due(db: Database) -> None:
    """Skip the back-off wait: tests do not sleep for it."""
    async with db.write() as conn:
        await conn.execute(
            update(delivery).where(delivery.c.status == "pending").values(next_attempt_at=utc_now())
        )


async def deliveries(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(delivery).order_by(delivery.c.created_at))
        return [dict(r._mapping) for r in rows.all()]


async def test_a_delivery_is_signed_and_sent_once(
    db: Database, settings: Settings, receivers
) -> None:
    receiver = receivers()
    endpoint_id, secret = await endpoint(db, settings, receiver.url, ["deposit.pending"])
    event_id = await emit(db, data={"depositId": "dep_1", "metadata": {"名前": "ü", "10": 1}})
    worker = DeliveryWorker(db, settings)
    await deliver_all(worker)
    await deliver_all(worker)  # nothing due: nothing sent twice
    [(_, headers, body)] = receiver.requests
    assert headers["X-PayIn-Signature"] == sign_body(secret.encode(), body)
    assert headers["X-PayIn-Event-Id"] == event_id
    assert headers["X-PayIn-Event-Type"] == "deposit.pending"
    assert headers["User-Agent"].startswith("addrpool/")
    [row] = await deliveries(db)
    assert headers["X-PayIn-Delivery-Id"] == row["id"]
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("succeeded", 1, 200)
    assert body.startswith(b'{"id":"' + event_id.encode())
    assert body == body_bytes(httpx.Response(200, content=body).json())  # canonical bytes
    assert endpoint_id == row["endpoint_id"]


async def test_timestamped_scheme(db: Database, settings: Settings, receivers) -> None:
    receiver = receivers()
    _, secret = await endpoint(db, settings, receiver.url, ["deposit.pending"], "timestamped")
    await emit(db)
    await deliver_all(DeliveryWorker(db, settings))
    [(_, headers, body)] = receiver.requests
    header = headers["X-PayIn-Signature"]
    assert header.startswith("t=")
    assert verify_timestamped([secret.encode()], body, header, int(time.time()))


async def test_server_errors_are_retried_until_delivered(
    db: Database, settings: Settings, receivers
) -> None:
    receiver = receivers((500, {}, 0.0), (502, {}, 0.0), (200, {}, 0.0))
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    event_id = await emit(db)
    worker = DeliveryWorker(db, settings)
    for _ in range(3):
        await deliver_all(worker)
        await make_due(db)
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("succeeded", 3)
    assert {r[1]["X-PayIn-Event-Id"] for r in receiver.requests} == {event_id}  # same id each time
    async with db.read() as conn:
        codes = [
            r[0]
            for r in (
                await conn.execute(
                    select(delivery_attempt.c.status_code).order_by(delivery_attempt.c.id)
                )
            ).all()
        ]
    assert codes == [500, 502, 200]


async def test_a_4xx_is_final_and_alerted(db: Database, settings: Settings, receivers) -> None:
    receiver = receivers((400, {}, 0.0))
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db)
    worker = DeliveryWorker(db, settings)
    await deliver_all(worker)
    await make_due(db)
    await deliver_all(worker)
    assert len(receiver.requests) == 1
    [row] = await deliveries(db)
    assert row["status"] == "failed"
    async with db.read() as conn:
        [kind] = (await conn.execute(select(alert.c.kind))).scalars().all()
    assert kind == "webhook_delivery_failed"


async def test_retry_after_is_honoured(db: Database, settings: Settings, receivers) -> None:
    receiver = receivers((503, {"Retry-After": "120"}, 0.0))
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db)
    before = utc_now()
    await deliver_all(DeliveryWorker(db, settings))
    [row] = await deliveries(db)
    assert row["status"] == "pending"
    assert row["next_attempt_at"] >= before + timedelta(seconds=119)


async def test_a_hanging_endpoint_does_not_delay_another(
    db: Database, settings: Settings, receivers
) -> None:
    hanging = receivers((200, {}, 3.0))
    quick = receivers()
    await endpoint(db, settings, hanging.url, ["deposit.pending"])
    await endpoint(db, settings, quick.url, ["deposit.pending"])
    await emit(db)
    worker = DeliveryWorker(db, settings, request_timeout=1.0)
    started = time.monotonic()
    await worker.run_once()
    while not quick.requests:
        assert time.monotonic() - started < 5
        await _tick()
    assert quick.requests[0][0] - started < 1.0  # not behind the hanging one
    await worker.drain()
    statuses = {row["endpoint_id"][:3]: row["status"] for row in await deliveries(db)}
    assert set(statuses.values()) <= {"succeeded", "pending"}


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)


async def test_a_confirmed_deposit_completes_when_its_deliveries_succeed(
    db: Database, settings: Settings, receivers
) -> None:
    first, second = receivers(), receivers((500, {}, 0.0), (200, {}, 0.0))
    await endpoint(db, settings, first.url, ["deposit.confirmed"])
    await endpoint(db, settings, second.url, ["deposit.confirmed"])
    deposit_id = await confirmed_deposit(db)
    worker = DeliveryWorker(db, settings)
    await deliver_all(worker)
    assert await deposit_status(db, deposit_id) == "confirmed"  # one delivery still failing
    await make_due(db)
    await deliver_all(worker)
    assert await deposit_status(db, deposit_id) == "completed"


async def deposit_status(db: Database, deposit_id: str) -> str:
    from pool.kit.tables import deposit

    async with db.read() as conn:
        return str(await conn.scalar(select(deposit.c.status).where(deposit.c.id == deposit_id)))


async def test_a_target_refused_at_delivery_is_final_and_alerted(
    db: Database, settings: Settings, receivers
) -> None:
    """Stored while private targets were allowed (http://127.0.0.1): refused once they are
    not, and not retried for days; the reason is recorded and the failure alerted."""
    receiver = receivers()
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db)
    strict = settings.model_copy(update={"webhook_allow_private": False})
    worker = DeliveryWorker(db, strict)
    await deliver_all(worker)
    await make_due(db)
    await deliver_all(worker)
    assert receiver.requests == []
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("failed", 1, None)
    assert row["last_error"].startswith("INVALID_URL: url must use https")
    await _assert_failure_alerted(db, row["id"], "INVALID_URL")


async def test_a_name_now_resolving_to_a_private_address_is_final(
    db: Database, settings: Settings, receivers
) -> None:
    receiver = receivers()
    port = receiver.httpd.server_address[1]
    await endpoint(db, settings, f"https://localhost:{port}/hook", ["deposit.pending"])
    await emit(db)
    strict = settings.model_copy(update={"webhook_allow_private": False})
    await deliver_all(DeliveryWorker(db, strict))
    assert receiver.requests == []
    [row] = await deliveries(db)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("PRIVATE_ADDRESS_REFUSED: localhost resolves to 127.")
    await _assert_failure_alerted(db, row["id"], "PRIVATE_ADDRESS_REFUSED")


async def test_a_name_that_does_not_resolve_is_retried(db: Database, settings: Settings) -> None:
    from tests.pool.webhooks.test_urls import CountingResolver

    await endpoint(db, settings, "https://gone.example/hook", ["deposit.pending"])
    await emit(db)
    await deliver_all(DeliveryWorker(db, settings, resolver=CountingResolver({})))
    [row] = await deliveries(db)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "does not resolve" in row["last_error"]
    async with db.read() as conn:
        assert (await conn.execute(select(alert.c.kind))).first() is None


async def _assert_failure_alerted(db: Database, delivery_id: str, code: str) -> None:
    async with db.read() as conn:
        [(kind, subject, value)] = (
            await conn.execute(select(alert.c.kind, alert.c.subject, alert.c.value))
        ).all()
    assert (kind, subject) == ("webhook_delivery_failed", f"webhook_delivery_failed:{delivery_id}")
    assert value.startswith(code)


async def confirmed_deposit(db: Database) -> str:
    """A deposit recorded and confirmed by the ledger, as the watcher would do it."""
    from pool.bindings import service as allocation
    from pool.deposits import ledger, new_rows
    from tests.fixtures.helpers import load_pool, usdt_transfer

    [address] = await load_pool(db, "evm", 1)
    async with db.write() as conn:
        await allocation.bind(
            conn, reference="payer", protocol="evm", metadata=None, actor="t", now=utc_now()
        )
        transfer = usdt_transfer(address)
        await ledger.record_transfers(
            conn, chain_id="devnet", protocol="evm", transfers=[transfer], now=utc_now()
        )
        deposit_id = new_rows.deposit_id("devnet", transfer.tx_hash, 0)
        await ledger.confirm_deposits(
            conn, verified={deposit_id: transfer.block_hash}, now=utc_now()
        )
    return deposit_id


async def test_the_seeds_receiver_under_node_accepts_what_the_worker_sends(
    db: Database, settings: Settings
) -> None:
    from tests.fixtures.receivers.node import seed_receiver

    endpoint_id, secret = await endpoint(
        db, settings, "http://127.0.0.1:9/later", ["deposit.pending"]
    )
    with seed_receiver(secret) as receiver:
        async with db.write() as conn:
            await webhooks.update_endpoint(
                conn,
                endpoint_id=endpoint_id,
                url=receiver.url,
                events=None,
                scheme=None,
                description=None,
                enabled=None,
                now=utc_now(),
            )
        await emit(
            db, data={"depositId": "dep_2", "metadata": {"note": "Привет 👋", "2": [1.5, 1e21]}}
        )
        await deliver_all(DeliveryWorker(db, settings))
    [row] = await deliveries(db)
    assert (row["status"], row["last_status_code"]) == ("succeeded", 200)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_workers_never_run_one_attempt_twice(
    db: Database, settings: Settings, receivers
) -> None:
    receiver = receivers((200, {}, 0.05))
    await endpoint(db, settings, receiver.url, ["deposit.pending"])
    event_ids = [await emit(db, data={"depositId": f"dep_{n}"}) for n in range(40)]
    first, second = DeliveryWorker(db, settings), DeliveryWorker(db, settings)
    import asyncio

    for _ in range(12):  # each claims at most its endpoint's room at a time
        await asyncio.gather(
            first.run_once(), second.run_once(), first.run_once(), second.run_once()
        )
        await asyncio.gather(first.drain(), second.drain())
    sent = [headers["X-PayIn-Event-Id"] for _, headers, _ in receiver.requests]
    assert sorted(sent) == sorted(event_ids)  # each exactly once
    assert {row["status"] for row in await deliveries(db)} == {"succeeded"}


async def test_a_worker_that_dies_mid_attempt_is_replaced_after_its_lease(
    db: Database, settings: Settings, receivers
) -> None:
    """A claim that never finishes (the process died) is claimed again once its lease ends;
    the receiver gets the same event id: at least once, deduplicated by the receiver."""
    from pool.webhooks.claims_repository import claim_due

    receiver = receivers()
    endpoint_id, _ = await endpoint(db, settings, receiver.url, ["deposit.pending"])
    event_id = await emit(db)
    now = utc_now()
    async with db.write() as conn:  # the dead worker's claim
        [claimed] = await claim_due(
            conn,
            endpoint_id=endpoint_id,
            now=now,
            lease_until=now + timedelta(seconds=60),
            limit=10,
        )
    worker = DeliveryWorker(db, settings)
    await deliver_all(worker)
    assert receiver.requests == []  # leased: nobody else may try meanwhile
    async with db.write() as conn:  # the lease runs out
        await conn.execute(update(delivery).values(next_attempt_at=utc_now()))
    await deliver_all(worker)
    [(_, headers, _)] = receiver.requests
    assert headers["X-PayIn-Event-Id"] == event_id == claimed.event_id
    [row] = await deliveries(db)
    assert row["status"] == "succeeded"


async def test_a_backlog_stays_in_the_database_not_in_memory(
    db: Database, settings: Settings, receivers
) -> None:
    """An endpoint holds at most HELD_PER_ENDPOINT claims: leases never run out while queued."""
    from pool.webhooks.delivery import HELD_PER_ENDPOINT

    slow = receivers((200, {}, 0.2))
    await endpoint(db, settings, slow.url, ["deposit.pending"])
    for n in range(3 * HELD_PER_ENDPOINT):
        await emit(db, data={"depositId": f"dep_{n}"})
    worker = DeliveryWorker(db, settings)
    assert await worker.run_once() == HELD_PER_ENDPOINT
    assert await worker.run_once() == 0  # no room until some finish
    await worker.drain()
    assert await worker.run_once() == HELD_PER_ENDPOINT
    await worker.drain()
