"""Pool alerts end to end: binds through the API, the engine, the hooks (a real HTTP receiver
and a real command), the webhook event — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text, update

from api.app import create_app
from pool.alerts.engine import apply, evaluate_all, pool_low_transition
from pool.alerts.monitoring_repository import ENDPOINT_FAILING_SINCE
from pool.alerts.notifications_repository import notifications_of
from pool.alerts.notifier import AlertNotifier
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings, Settings
from pool.kit.db import Database
from pool.kit.tables import (
    address,
    alert,
    alert_notification,
    alert_transition,
    binding,
    chain_cursor,
    delivery,
    delivery_attempt,
    event,
)
from pool.webhooks import endpoints as webhooks
from pool.webhooks.delivery import DeliveryWorker
from tests.fixtures.helpers import auth, load_pool, random_addresses
from tests.fixtures.polling import wait_until_async
from tests.pool.webhooks.test_delivery import (
    Receiver,
    deliver_all,
    deliveries,
    emit,
    endpoint,
    make_due,
)

THRESHOLD = 3
SETTLE_DEADLINE_SECONDS = 10.0


def alert_settings(
    settings: Settings, url: str, log_file: Path, *, allow_private: bool = True
) -> Settings:
    """EVM pool-low at 3 free addresses; an HTTP hook (on loopback: allowed unless told
    otherwise) and a command hook."""
    append = f"import sys; open({str(log_file)!r}, 'a').write(sys.stdin.read() + '\\n')"
    alerts = AlertSettings(
        thresholds={"evm": THRESHOLD},
        hooks=[
            {"name": "ops-http", "type": "http", "url": url, "secret": "hook-secret"},
            {"name": "ops-command", "type": "command", "command": [sys.executable, "-c", append]},
        ],
        hooks_allow_private=allow_private,
    )
    return settings.model_copy(update={"alerts": alerts})


@pytest.fixture
async def alerting(
    settings: Settings, db: Database, receivers, tmp_path: Path
) -> AsyncIterator[Any]:
    class Alerting:
        hook = receivers()
        command_log = tmp_path / "alerts.jsonl"
        config = alert_settings(settings, hook.url, command_log)
        app = create_app(config, db=db)
        notifier = AlertNotifier(db, config.alerts)

    transport = httpx.ASGITransport(app=Alerting.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        Alerting.http = http  # type: ignore[attr-defined]
        yield Alerting
    await Alerting.app.state.ctx.pool_alerts.close()


async def bind(alerting: Any, key: str, reference: str) -> int:
    answer = await alerting.http.post(
        "/api/v1/deposits/bind",
        json={"depositReference": reference, "protocol": "evm"},
        headers=auth(key),
    )
    return int(answer.status_code)


async def settle(alerting: Any, db: Database) -> None:
    """Wait out the post-bind evaluation, then let the notifier send what it wrote."""
    pool_alerts = alerting.app.state.ctx.pool_alerts
    deadline = asyncio.get_running_loop().time() + SETTLE_DEADLINE_SECONDS
    while pool_alerts.busy():
        assert asyncio.get_running_loop().time() < deadline, "the pool evaluation never ran"
        await asyncio.sleep(0.01)
    await alerting.notifier.run_once()


async def transitions(db: Database, subject: str | None = None) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(alert.c.subject, alert_transition.c.transition)
            .select_from(alert_transition.join(alert, alert.c.id == alert_transition.c.alert_id))
            .order_by(alert_transition.c.id)
        )
        return [(s, t) for s, t in rows.all() if subject in (None, s)]


def pool_low_posts(hook: Receiver) -> list[dict[str, Any]]:
    bodies = [json.loads(request[2]) for request in hook.requests]
    return [b for b in bodies if b["alert"]["subject"] == "pool_low:evm"]


async def test_binding_through_the_threshold_fires_once_to_every_hook_and_resolves_once(
    alerting: Any, db: Database, admin_key: str
) -> None:
    await load_pool(db, "evm", 6)
    for n in range(3):
        assert await bind(alerting, admin_key, f"user-{n}") == 201
    await settle(alerting, db)
    assert await transitions(db) == []  # 3 free: not below 3

    assert await bind(alerting, admin_key, "user-3") == 201  # 2 free: fires
    await settle(alerting, db)
    assert await bind(alerting, admin_key, "user-4") == 201  # 1 free: already firing
    await settle(alerting, db)
    assert await transitions(db) == [("pool_low:evm", "fired")]

    [posted] = alerting.hook.requests
    body = json.loads(posted[2])
    assert body["text"].startswith("[FIRED] warning: 2 free EVM addresses of 6")
    assert body["alert"]["details"] == {
        "protocol": "evm",
        "available": 2,
        "total": 6,
        "threshold": 3,
        "percentage": "33.33",
    }
    assert posted[1]["X-Addrpool-Signature"].startswith("t=")
    [ran] = alerting.command_log.read_text().splitlines()
    assert json.loads(ran)["alert"]["subject"] == "pool_low:evm"
    async with db.read() as conn:
        [(data,)] = (
            await conn.execute(select(event.c.data).where(event.c.type == "alert.address_pool_low"))
        ).all()
    assert data["available"] == 2 and data["percentage"] == "33.33"

    # Around the threshold: 3 free is neither low nor above the margin — no flapping.
    await load_pool(db, "evm", 2)  # 3 free
    await evaluate_all(db, alerting.config.alerts, set())
    await bind(alerting, admin_key, "user-5")  # 2 free
    await settle(alerting, db)
    assert await transitions(db, "pool_low:evm") == [("pool_low:evm", "fired")]

    await load_pool(db, "evm", 3)  # 5 free > 3 x 1.1: resolved, once
    await evaluate_all(db, alerting.config.alerts, set())
    await evaluate_all(db, alerting.config.alerts, set())
    await alerting.notifier.run_once()
    assert await transitions(db, "pool_low:evm") == [
        ("pool_low:evm", "fired"),
        ("pool_low:evm", "resolved"),
    ]
    assert [b["transition"] for b in pool_low_posts(alerting.hook)] == ["fired", "resolved"]
    ran = [json.loads(line) for line in alerting.command_log.read_text().splitlines()]
    assert [r["transition"] for r in ran if r["alert"]["subject"] == "pool_low:evm"] == [
        "fired",
        "resolved",
    ]


async def test_an_exhausted_pool_fires_critical_from_the_refused_bind(
    alerting: Any, db: Database, admin_key: str
) -> None:
    await load_pool(db, "evm", 1)
    assert await bind(alerting, admin_key, "only") == 201
    assert await bind(alerting, admin_key, "too-many") == 503
    await settle(alerting, db)
    async with db.read() as conn:
        [row] = (await conn.execute(select(alert))).all()
    assert (row.subject, row.severity, row.value) == ("pool_low:evm", "critical", "0")


async def test_a_hook_that_is_down_is_retried_until_it_takes_it(
    settings: Settings, db: Database, receivers, tmp_path: Path, admin_key: str
) -> None:
    flaky = receivers((503, {}, 0.0), (200, {}, 0.0))
    config = alert_settings(settings, flaky.url, tmp_path / "log.jsonl")
    await load_pool(db, "evm", 2)  # 2 free: below 3 already
    await evaluate_all(db, config.alerts, set())
    notifier = AlertNotifier(db, config.alerts)
    await notifier.run_once()
    [alert_id] = [a for (a,) in await _alert_ids(db)]
    async with db.read() as conn:
        states = {
            n["hook"]: (n["status"], n["attempts"]) for n in await notifications_of(conn, alert_id)
        }
    assert states == {"ops-http": ("pending", 1), "ops-command": ("sent", 1)}
    async with db.write() as conn:  # skip the backoff wait
        await conn.execute(update(alert_notification).values(next_attempt_at=utc_now()))
    await notifier.run_once()
    async with db.read() as conn:
        states = {n["hook"]: n["status"] for n in await notifications_of(conn, alert_id)}
    assert states == {"ops-http": "sent", "ops-command": "sent"}
    assert len(flaky.requests) == 2


@pytest.mark.parametrize("where", ["http://127.0.0.1:{port}/hook", "https://localhost:{port}/"])
async def test_a_hook_to_a_private_target_is_refused_at_once_unless_allowed(
    settings: Settings, db: Database, receivers, tmp_path: Path, where: str
) -> None:
    """Checked before each send (a name is judged where it resolves then): refused, it is
    failed at once — trying again for a day cannot help — and the other hooks still hear."""
    hook = receivers()
    url = where.format(port=hook.httpd.server_address[1])
    config = alert_settings(settings, url, tmp_path / "log.jsonl", allow_private=False)
    await load_pool(db, "evm", 2)
    await evaluate_all(db, config.alerts, set())
    await AlertNotifier(db, config.alerts).run_once()
    [alert_id] = [a for (a,) in await _alert_ids(db)]
    async with db.read() as conn:
        told = {n["hook"]: n for n in await notifications_of(conn, alert_id)}
    assert hook.requests == []
    assert (told["ops-http"]["status"], told["ops-http"]["attempts"]) == ("failed", 1)
    assert "hooks_allow_private" in told["ops-http"]["last_error"]
    assert told["ops-command"]["status"] == "sent"


async def _alert_ids(db: Database) -> list[tuple[int]]:
    async with db.read() as conn:
        return [(int(i),) for (i,) in (await conn.execute(select(alert.c.id))).all()]


async def test_projected_exhaustion_fires_from_a_synthetic_bind_history(
    settings: Settings, db: Database
) -> None:
    pool = await load_pool(db, "evm", 300)
    now = utc_now()
    async with db.write() as conn:
        ids = (await conn.execute(select(address.c.id).limit(240))).scalars().all()
        await conn.execute(update(address).where(address.c.id.in_(ids)).values(status="bound"))
        # 240 binds over the last 24 h: 60 free left go in 6 hours.
        await conn.execute(
            insert(binding),
            [
                {
                    "deposit_reference": f"r{n}",
                    "protocol": "evm",
                    "address_id": address_id,
                    "bound_at": now - timedelta(minutes=6 * n),
                    "bound_by": "t",
                }
                for n, address_id in enumerate(ids)
            ],
        )
    assert len(pool) == 300
    rules = AlertSettings(thresholds={"evm": 10})
    await evaluate_all(db, rules, set())
    assert await transitions(db) == [("pool_exhaustion:evm", "fired")]
    async with db.read() as conn:
        value = await conn.scalar(select(alert.c.value))
    projected = datetime.fromisoformat(str(value))
    assert abs(projected - (now + timedelta(hours=6))) < timedelta(minutes=2)


async def test_watcher_and_delivery_rules(settings: Settings, db: Database) -> None:
    now = utc_now()
    async with db.write() as conn:
        await conn.execute(
            insert(chain_cursor).values(
                chain_id="slow",
                block_number=100,
                block_hash="0x1",
                head=500,
                confirmations=3,
                head_at=now - timedelta(minutes=10),
                updated_at=now - timedelta(minutes=10),
            )
        )
    await evaluate_all(db, AlertSettings(thresholds={"evm": 0, "tron": 0}), {"slow"})
    assert sorted(await transitions(db)) == [
        ("watcher_lagging:slow", "fired"),
        ("watcher_stalled:slow", "fired"),
    ]
    async with db.write() as conn:
        await conn.execute(update(chain_cursor).values(block_number=500, updated_at=utc_now()))
    await evaluate_all(db, AlertSettings(thresholds={"evm": 0, "tron": 0}), {"slow"})
    assert sorted(t for t in await transitions(db) if t[1] == "resolved") == [
        ("watcher_lagging:slow", "resolved"),
        ("watcher_stalled:slow", "resolved"),
    ]


async def test_alerts_api_lists_and_filters(
    alerting: Any, db: Database, admin_key: str, service_key: str
) -> None:
    await load_pool(db, "evm", 1)
    await evaluate_all(db, alerting.config.alerts, set())
    listed = (
        await alerting.http.get("/api/v1/alerts?state=firing", headers=auth(admin_key))
    ).json()
    [shown] = listed["data"]["alerts"]
    assert (shown["kind"], shown["state"], shown["value"]) == ("pool_low", "firing", "1")
    assert listed["data"]["pagination"]["total"] == 1
    none = (
        await alerting.http.get("/api/v1/alerts?state=resolved", headers=auth(admin_key))
    ).json()
    assert none["data"]["alerts"] == []
    refused = await alerting.http.get("/api/v1/alerts", headers=auth(service_key))
    assert refused.status_code == 403


async def test_alerting_switched_off_evaluates_nothing(
    settings: Settings, db: Database, admin_key: str
) -> None:
    quiet = settings.model_copy(update={"alerts": AlertSettings(enabled=False)})
    app = create_app(quiet, db=db)
    await load_pool(db, "evm", 1)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        answer = await http.post(
            "/api/v1/deposits/bind",
            json={"depositReference": "x", "protocol": "evm"},
            headers=auth(admin_key),
        )
        assert answer.status_code == 201
    await asyncio.sleep(0.2)  # nothing may happen: a wait for an absence cannot poll
    assert await transitions(db) == []
    await app.state.ctx.pool_alerts.close()


async def test_binding_and_unbinding_around_the_threshold_does_not_flap(
    settings: Settings, db: Database, receivers, tmp_path: Path, admin_key: str
) -> None:
    hook = receivers()
    config = alert_settings(settings, hook.url, tmp_path / "log.jsonl")
    config = config.model_copy(update={"cooldown": timedelta(0)})  # unbound = free at once
    app = create_app(config, db=db)
    await load_pool(db, "evm", 5)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:

        async def call(path: str, reference: str) -> None:
            body = {"depositReference": reference, "protocol": "evm"}
            answer = await http.post(f"/api/v1/deposits/{path}", json=body, headers=auth(admin_key))
            assert answer.status_code in (200, 201), answer.text
            await asyncio.sleep(0.15)  # let each change be evaluated on its own

        for n in range(3):
            await call("bind", f"steady-{n}")  # 2 free: fires
        for _ in range(3):  # 3 free, 2 free, 3 free...: never above 3 x 1.1, never resolves
            await call("unbind", "steady-2")
            await call("bind", "steady-2")
        await call("unbind", "steady-2")
        await call("unbind", "steady-1")  # 4 free > 3.3: resolves, once
        await call("bind", "steady-1")  # 3 free: not below 3, stays resolved
    await app.state.ctx.pool_alerts.close()
    assert await transitions(db, "pool_low:evm") == [
        ("pool_low:evm", "fired"),
        ("pool_low:evm", "resolved"),
    ]


async def test_a_healthy_pool_is_evaluated_at_most_once_a_second(
    alerting: Any, db: Database, admin_key: str
) -> None:
    await load_pool(db, "evm", 50)  # far above the threshold of 3
    pool_alerts = alerting.app.state.ctx.pool_alerts
    assert await bind(alerting, admin_key, "first") == 201
    # The first evaluation runs at once; how soon is not what this test is about.
    await wait_until_async(lambda: pool_alerts._healthy == {"evm": True}, timeout=10)
    assert pool_alerts._healthy == {"evm": True}
    pool_alerts.changed("evm")
    assert pool_alerts._coalesce() == 1.0
    async with db.write() as conn:  # now close to it: every change counts again
        await conn.execute(
            update(address).where(address.c.status == "available").values(status="archived")
        )
    # The next evaluation (due at most a second later: `_coalesce` above) writes its transition;
    # the wait allows for a loaded machine, the period itself is asserted by `_coalesce`.
    await wait_until_async(lambda: transitions(db, "pool_low:evm"), timeout=5)
    assert pool_alerts._healthy == {"evm": False}
    assert await transitions(db, "pool_low:evm") == [("pool_low:evm", "fired")]


async def test_pool_low_skips_a_protocol_never_imported_not_one_whose_addresses_are_archived(
    settings: Settings, db: Database
) -> None:
    """The pool summary's `inUse`: no address ever imported. A protocol whose every address was
    archived still has binds refused — that is an empty pool, not an unused one."""
    rules = AlertSettings(thresholds={"evm": 0})  # Tron's rule alone
    await evaluate_all(db, rules, set())
    assert await transitions(db) == []
    await load_pool(db, "tron", 2)
    async with db.write() as conn:
        await conn.execute(update(address).values(status="archived"))
    await evaluate_all(db, rules, set())
    assert await transitions(db) == [("pool_low:tron", "fired")]
    async with db.read() as conn:
        [row] = (await conn.execute(select(alert))).all()
    assert (row.severity, row.value, row.details["total"]) == ("critical", "0", 0)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll background work with a deadline (no fixed sleeps)."""
    await wait_until_async(check, timeout=timeout)


async def pool_low_row(db: Database) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(alert).where(alert.c.kind == "pool_low"))).one()


async def test_pool_low_escalates_as_the_pool_empties_and_de_escalates_as_it_refills(
    alerting: Any, db: Database, admin_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the post-bind evaluation and the notifier: every hook (HTTP, command, log, the
    webhook event) hears "escalated to critical"; the HTTP and command hooks and the log hear
    "de-escalated"; value changes in between are written without telling anyone."""
    caplog.set_level(logging.INFO, logger="addrpool.alerts")

    async def told(*expected: str) -> None:
        async def arrived() -> bool:
            return [t for _, t in await transitions(db, "pool_low:evm")] == list(expected)

        await eventually(arrived)
        await alerting.notifier.run_once()

    await load_pool(db, "evm", 4)
    for n in range(2):
        assert await bind(alerting, admin_key, f"user-{n}") == 201  # 2 free < 3: warning
    await told("fired")
    for n in range(2, 4):
        assert await bind(alerting, admin_key, f"user-{n}") == 201  # 0 free: critical
    await told("fired", "escalated")
    assert await bind(alerting, admin_key, "refused") == 503  # still empty: nothing new
    imported = await alerting.http.post(
        "/api/v1/address-pool/addresses",
        json={"protocol": "evm", "addresses": [{"address": a} for a in random_addresses("evm", 2)]},
        headers=auth(admin_key),
    )
    assert imported.status_code == 201, imported.text
    await told("fired", "escalated", "deescalated")  # 2 free: still low, no longer empty

    posts = pool_low_posts(alerting.hook)
    assert [(p["transition"], p["alert"]["severity"]) for p in posts] == [
        ("fired", "warning"),
        ("escalated", "critical"),
        ("deescalated", "warning"),
    ]
    assert [p["text"] for p in posts[1:]] == [
        "[ESCALATED] critical: 0 free EVM addresses of 4 (0%): none left, the pool is empty"
        " (threshold 3)",
        "[DE-ESCALATED] warning: 2 free EVM addresses of 6 (33.33%): no longer empty, still low"
        " (threshold 3)",
    ]
    ran = [json.loads(line) for line in alerting.command_log.read_text().splitlines()]
    assert [r["transition"] for r in ran] == ["fired", "escalated", "deescalated"]
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "addrpool.alerts"]
    assert ("WARNING", "alert escalated") in logged and ("INFO", "alert de-escalated") in logged
    async with db.read() as conn:
        sent = (
            await conn.execute(
                select(event.c.data)
                .where(event.c.type == "alert.address_pool_low")
                .order_by(event.c.seq)
            )
        ).scalars()
        assert [data["available"] for data in sent] == [2, 0]  # low, then empty

    # A bind that changes only the value: the alert follows it, the hooks hear nothing.
    before = await pool_low_row(db)
    assert await bind(alerting, admin_key, "user-9") == 201  # 1 free

    async def value_followed() -> bool:
        return str((await pool_low_row(db)).value) == "1"

    await eventually(value_followed)
    after = await pool_low_row(db)
    assert (after.severity, after.details["available"]) == ("warning", 1)
    assert after.last_fired_at > before.last_fired_at > after.first_fired_at
    await alerting.notifier.run_once()
    assert len(pool_low_posts(alerting.hook)) == 3
    assert [t for _, t in await transitions(db)] == ["fired", "escalated", "deescalated"]


async def move_deliveries_back(db: Database, by: timedelta) -> None:
    """As if every delivery and attempt so far had happened `by` earlier (the clock moved)."""
    moved = ("created_at", "retry_from", "last_attempt_at", "next_attempt_at")
    async with db.write() as conn:
        for row in (await conn.execute(select(delivery))).all():
            values = {c: row._mapping[c] - by for c in moved if row._mapping[c] is not None}
            await conn.execute(update(delivery).where(delivery.c.id == row.id).values(**values))
        for attempt_id, at in (
            await conn.execute(select(delivery_attempt.c.id, delivery_attempt.c.attempted_at))
        ).all():
            await conn.execute(
                update(delivery_attempt)
                .where(delivery_attempt.c.id == attempt_id)
                .values(attempted_at=at - by)
            )


async def test_a_dead_receiver_at_low_traffic_fires_once_failing_too_long_and_resolves_when_back(
    settings: Settings, db: Database, receivers
) -> None:
    """One event, one failed attempt: far under `webhook_failures` (10 in 15 min), which
    backoff keeps a dead receiver under. What fires is the age of its oldest failure."""
    receiver = receivers((503, {}, 0.0), (200, {}, 0.0))
    endpoint_id, _ = await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db)
    worker = DeliveryWorker(db, settings)
    await deliver_all(worker)  # 503: pending, retried in a second or so
    rules = AlertSettings(thresholds={"evm": 0, "tron": 0})  # webhook_failing_after: PT10M
    await evaluate_all(db, rules, set())
    assert await transitions(db) == []  # failing for a moment only

    await move_deliveries_back(db, timedelta(minutes=11))
    await evaluate_all(db, rules, set())
    subject = f"webhook_endpoint_failing:{endpoint_id}"
    assert await transitions(db) == [(subject, "fired")]  # and no webhook_failures
    async with db.read() as conn:
        row = (await conn.execute(select(alert))).one()
    assert (row.kind, row.severity) == ("webhook_endpoint_failing", "warning")
    assert int(row.value) >= 660
    assert row.details | {"failingSeconds": 0, "failingSince": ""} == {
        "endpointId": endpoint_id,
        "deliveryId": (await deliveries(db))[0]["id"],
        "attempts": 1,
        "lastStatusCode": 503,
        "lastError": None,
        "failingSeconds": 0,
        "failingSince": "",
        "thresholdSeconds": 600,
    }
    await evaluate_all(db, rules, set())
    assert await transitions(db) == [(subject, "fired")]  # once per episode

    await make_due(db)
    await deliver_all(worker)  # the receiver is back: 200
    assert [d["status"] for d in await deliveries(db)] == ["succeeded"]
    await evaluate_all(db, rules, set())
    assert await transitions(db) == [(subject, "fired"), (subject, "resolved")]


async def test_the_failing_endpoint_query_walks_the_pending_index(db: Database) -> None:
    """Not the endpoint's delivered history: the partial index of pending deliveries."""
    statement = ENDPOINT_FAILING_SINCE.params(p_endpoint="we_x")
    async with db.write() as conn:
        sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
        if db.is_sqlite:
            plan = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
        else:  # an empty table: a sequential scan would win on cost alone
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = (await conn.execute(text(f"EXPLAIN {sql}"))).all()
    assert "ix_delivery_pending_by_endpoint" in " ".join(str(row[-1]) for row in plan)


async def test_a_value_left_for_later_is_written_without_another_bind(
    alerting: Any, db: Database, admin_key: str
) -> None:
    """A firing pool_low is written at most once a second after binds; the last bind of a
    burst is not left stale until the timer's next pass: the pool is evaluated again."""
    await load_pool(db, "evm", 3)
    assert await bind(alerting, admin_key, "first") == 201  # 2 free: fires

    async def fired() -> bool:
        return await transitions(db) == [("pool_low:evm", "fired")]

    await eventually(fired)
    async with db.write() as conn:  # as if refreshed a moment from now: the next value waits
        await conn.execute(update(alert).values(last_fired_at=utc_now() + timedelta(seconds=1)))
    assert await bind(alerting, admin_key, "second") == 201  # 1 free
    pool_alerts = alerting.app.state.ctx.pool_alerts

    async def deferred() -> bool:
        return "evm" in pool_alerts._rechecks

    await eventually(deferred)
    assert (await pool_low_row(db)).value == "2"  # left for later, not lost

    async def value_followed() -> bool:
        return str((await pool_low_row(db)).value) == "1"

    await eventually(value_followed)
    assert await transitions(db) == [("pool_low:evm", "fired")]


async def test_a_refresh_measured_before_a_resolution_opens_no_new_episode(
    settings: Settings, db: Database
) -> None:
    """A post-bind evaluation measures in one transaction and writes in the next: if the
    timer resolved the episode in between, its refresh must not fire the alert again."""
    rules = AlertSettings(thresholds={"evm": 3})
    await load_pool(db, "evm", 2)
    await evaluate_all(db, rules, set())  # 2 free: fires
    async with db.read() as conn:
        later = utc_now() + timedelta(seconds=2)  # past the once-a-second refresh
        stale = await pool_low_transition(conn, rules, "evm", later)
    assert stale.decision == "refresh"
    await load_pool(db, "evm", 3)  # 5 free: resolves
    await evaluate_all(db, rules, set())
    await apply(db, [stale], later)
    assert await transitions(db) == [("pool_low:evm", "fired"), ("pool_low:evm", "resolved")]


async def test_a_failing_endpoint_the_operator_disables_is_no_longer_alerted(
    settings: Settings, db: Database, receivers
) -> None:
    receiver = receivers((503, {}, 0.0))
    endpoint_id, _ = await endpoint(db, settings, receiver.url, ["deposit.pending"])
    await emit(db)
    await deliver_all(DeliveryWorker(db, settings))
    await move_deliveries_back(db, timedelta(minutes=11))
    rules = AlertSettings(thresholds={"evm": 0, "tron": 0})
    await evaluate_all(db, rules, set())
    subject = f"webhook_endpoint_failing:{endpoint_id}"
    assert await transitions(db) == [(subject, "fired")]
    async with db.write() as conn:
        await webhooks.update_endpoint(
            conn,
            endpoint_id=endpoint_id,
            url=None,
            events=None,
            scheme=None,
            description=None,
            enabled=False,
            now=utc_now(),
        )
    await evaluate_all(db, rules, set())
    assert await transitions(db) == [(subject, "fired"), (subject, "resolved")]
