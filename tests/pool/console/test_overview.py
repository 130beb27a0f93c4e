"""The console overview's cheap parts, both databases: the binds chart counts each ended day
once per process and the day under way on every view; webhook health counts each endpoint's
pending, failed and recently succeeded deliveries and its latest answer."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select

from pool.console.overview import BindDays
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


async def test_ended_days_are_counted_once_and_today_on_every_view(db: Database) -> None:
    days_ago = [NOW - timedelta(days=d) for d in (0, 0, 1, 3, 3, 3, 29, 30)]
    await _bind_at(db, days_ago)
    chart = BindDays()
    async with db.read() as conn:
        first = dict(await chart.chart(conn, protocol="evm", now=NOW))
    assert len(first) == 30 and "2026-11-07" not in first  # thirty days, the 30th ago left out
    assert (first["2026-12-07"], first["2026-12-06"], first["2026-12-04"]) == (2, 1, 3)
    assert first["2026-11-08"] == 1 and sum(first.values()) == 7
    # A binding dated in an ended day (which the product never writes) is not read again;
    # one bound today is.
    await _bind_at(db, [NOW - timedelta(days=3), NOW])
    async with db.read() as conn:
        again = dict(await chart.chart(conn, protocol="evm", now=NOW))
        fresh = dict(await BindDays().chart(conn, protocol="evm", now=NOW))
    assert (again["2026-12-04"], again["2026-12-07"]) == (3, 3)
    assert (fresh["2026-12-04"], fresh["2026-12-07"]) == (4, 3)


async def test_a_day_just_ended_is_read_until_it_has_settled(db: Database) -> None:
    just_after_midnight = NOW.replace(hour=0, minute=5)
    await _bind_at(db, [just_after_midnight - timedelta(minutes=10)])
    chart = BindDays()
    async with db.read() as conn:
        await chart.chart(conn, protocol="evm", now=just_after_midnight)
    await _bind_at(db, [just_after_midnight - timedelta(minutes=6)])  # 23:59, committed late
    async with db.read() as conn:
        shown = dict(await chart.chart(conn, protocol="evm", now=just_after_midnight))
        later = dict(await chart.chart(conn, protocol="evm", now=NOW))
    assert shown["2026-12-06"] == 2 and later["2026-12-06"] == 2


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
