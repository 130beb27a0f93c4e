"""The console overview's cheap parts, both databases: the binds chart and the summary's bind
rate count each settled hour once per process and the last hour or so on every view, and equal
a whole count; webhook health counts each endpoint's
pending, failed and recently succeeded deliveries and its latest answer."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from pool.bindings.bind_hours import DAY, BindHours
from pool.bindings.hours_repository import binds_in_ranges
from pool.console.overview_repository import endpoint_health
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address, binding, delivery, event, webhook_endpoint
from tests.fixtures.helpers import load_pool

NOW = datetime.fromisoformat("2026-12-07T12:00:00+00:00")


async def _bind_at(db: Database, moments: list[datetime]) -> None:
    """A binding dated at each moment, each to an address of its own."""
    await load_pool(db, "evm", len(moments))
    async with db.write() as conn:
        fresh = await conn.scalars(
            select(address.c.id).order_by(address.c.id.desc()).limit(len(moments))
        )
        await conn.execute(
            insert(binding),
            [
                {
                    "deposit_reference": f"r{address_id}",
                    "protocol": "evm",
                    "address_id": address_id,
                    "bound_at": moment,
                    "bound_by": "test",
                }
                for address_id, moment in zip(fresh.all(), moments, strict=True)
            ],
        )


async def test_settled_hours_are_counted_once_and_the_last_hour_on_every_view(
    db: Database,
) -> None:
    days_ago = [NOW - timedelta(days=d) for d in (0, 0, 1, 3, 3, 3, 29, 30)]
    await _bind_at(db, days_ago)
    hours = BindHours()
    async with db.read() as conn:
        first = dict((await hours.per_day(conn, days=30, now=NOW))["evm"])
    assert len(first) == 30 and "2026-11-07" not in first  # thirty days, the 30th ago left out
    assert (first["2026-12-07"], first["2026-12-06"], first["2026-12-04"]) == (2, 1, 3)
    assert first["2026-11-08"] == 1 and sum(first.values()) == 7
    # A binding dated in a settled hour (which the product never writes) is not read again;
    # one bound in the last hour is.
    await _bind_at(db, [NOW - timedelta(days=3), NOW - timedelta(minutes=30)])
    async with db.read() as conn:
        again = dict((await hours.per_day(conn, days=30, now=NOW))["evm"])
        fresh = dict((await BindHours().per_day(conn, days=30, now=NOW))["evm"])
    assert (again["2026-12-04"], again["2026-12-07"]) == (3, 3)
    assert (fresh["2026-12-04"], fresh["2026-12-07"]) == (4, 3)


async def test_an_hour_just_ended_is_read_until_it_has_settled(db: Database) -> None:
    just_after_midnight = NOW.replace(hour=0, minute=5)
    await _bind_at(db, [just_after_midnight - timedelta(minutes=10)])
    hours = BindHours()
    async with db.read() as conn:
        await hours.per_day(conn, days=30, now=just_after_midnight)
        await hours.since_each(conn, since=just_after_midnight - DAY, now=just_after_midnight)
    await _bind_at(db, [just_after_midnight - timedelta(minutes=6)])  # 23:59, committed late
    async with db.read() as conn:
        shown = dict((await hours.per_day(conn, days=30, now=just_after_midnight))["evm"])
        later = dict((await hours.per_day(conn, days=30, now=NOW))["evm"])
        rate = await hours.since_each(conn, since=NOW - DAY, now=NOW)
    assert shown["2026-12-06"] == 2 and later["2026-12-06"] == 2 and rate["evm"] == 2


async def test_the_bind_rate_equals_a_whole_count_as_time_goes_by(db: Database) -> None:
    """Binds stamped as the product stamps them (at the time of the bind), the summary's
    window counted by one remembering process every few minutes: always the whole count."""
    hours = BindHours()
    began = NOW - timedelta(hours=30)
    rng = random.Random(7)
    for step in range(24):
        moment = began + step * timedelta(minutes=83)
        await _bind_at(db, [moment - timedelta(seconds=rng.randrange(600)) for _ in range(3)])
        now = moment + timedelta(minutes=rng.randrange(5))
        for window in (DAY, timedelta(hours=2), timedelta(minutes=20)):
            async with db.read() as conn:
                remembered = await hours.since_each(conn, since=now - window, now=now)
                whole = await binds_in_ranges(conn, [(now - window, None)])
            assert remembered["evm"] == whole[("evm", 0)], (step, window)
            assert remembered["tron"] == 0


async def test_webhook_health_counts_per_endpoint(db: Database) -> None:
    now = utc_now()
    async with db.write() as conn:
        for endpoint_id in ("we_a", "we_b", "we_gone"):
            await conn.execute(
                insert(webhook_endpoint).values(
                    id=endpoint_id, url=f"https://{endpoint_id}.example/hook",
                    signature_scheme="body", secret_encrypted="x", enabled=True,
                    created_at=now, updated_at=now,
                    deleted_at=now if endpoint_id == "we_gone" else None,
                )
            )  # fmt: skip
        rows = [
            ("we_a", "succeeded", 200, now - timedelta(days=2)),  # before the window
            ("we_a", "succeeded", 200, now - timedelta(hours=1)),
            ("we_a", "failed", 500, now - timedelta(minutes=30)),
            ("we_a", "pending", None, now - timedelta(minutes=1)),  # not attempted yet
            ("we_b", "pending", 503, now - timedelta(minutes=5)),
        ]
        for n, (endpoint_id, status, code, created) in enumerate(rows):
            seq = (
                await conn.execute(
                    insert(event)
                    .values(id=f"evt_{n}", type="deposit.confirmed", data={}, created_at=created)
                    .returning(event.c.seq)
                )
            ).scalar_one()
            await conn.execute(
                insert(delivery).values(
                    id=f"dlv_{n}", event_seq=seq, endpoint_id=endpoint_id, status=status,
                    attempts=0 if code is None else 1, created_at=created, retry_from=created,
                    last_attempt_at=None if code is None else created, last_status_code=code,
                    completed_at=created if status == "succeeded" else None,
                )
            )  # fmt: skip
    async with db.read() as conn:
        health = await endpoint_health(conn, since=now - timedelta(hours=24))
    shown = {
        h.endpoint_id: (h.pending, h.failed, h.succeeded_recently, h.last_status) for h in health
    }
    assert shown == {"we_a": (1, 1, 1, 500), "we_b": (1, 0, 0, 503)}


async def test_a_window_longer_than_the_chart_is_counted_whole(db: Database) -> None:
    await _bind_at(db, [NOW - timedelta(days=d) for d in (1, 40, 50)])
    hours = BindHours()
    async with db.read() as conn:
        await hours.per_day(conn, days=30, now=NOW)
        first = await hours.since_each(conn, since=NOW - 60 * DAY, now=NOW)
        await hours.per_day(conn, days=30, now=NOW)
        again = await hours.since_each(conn, since=NOW - 60 * DAY, now=NOW)
    assert first["evm"] == again["evm"] == 3
