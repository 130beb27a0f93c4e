"""The pool's refill from a registered xpub, on SQLite and PostgreSQL: a bind down through the
low-water mark refills without an alert, a refill at its maximum index leaves `pool_low` to
fire, and two workers racing for the same range import it once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from chains.hd import derive_addresses, derive_from_key, parse_extended_public_key
from chains.verify import verify_pool
from pool.addresses.imports import AccountKey, import_xpub
from pool.addresses.stats import summarize
from pool.alerts.engine import evaluate_all
from pool.alerts.monitoring_repository import free_addresses
from pool.alerts.repository import firing_subjects
from pool.bindings.service import bind_address
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings, RefillSettings
from pool.kit.db import Database
from pool.kit.tables import address, audit_log, import_batch
from pool.refill import repository as repo
from pool.refill.service import import_range, refill_pass, run_refill
from pool.refill.switch import KeyChoice, RefillValues, disable, enable
from tests.chains.test_hd import V1_M_0H
from tests.fixtures.polling import wait_until_async

ACCOUNT = parse_extended_public_key(V1_M_0H)
KEY = ACCOUNT.serialize()
ALERTS = AlertSettings(thresholds={"evm": 5, "tron": 5}, margin=0.0)  # low water: 10
REFILL = RefillSettings(batch_size=20)
POOL_LOW = "pool_low:evm"


async def _import(db: Database, count: int) -> None:
    derived = derive_addresses(ACCOUNT, protocol="evm", branch=0, start=0, count=count)
    await import_xpub(
        db, protocol="evm", account=AccountKey(KEY, ACCOUNT.fingerprint), derived=derived,
        actor="test",
    )  # fmt: skip


async def _enable(db: Database, **values: int) -> None:
    await enable(
        db, choice=KeyChoice("evm", public_key=KEY), branch=0, values=RefillValues(**values),
        settings=REFILL, derive=derive_from_key, actor="test",
    )  # fmt: skip


async def _bind_until_free(db: Database, free: int) -> None:
    while await _free(db) > free:
        await bind_address(
            db, reference=f"user-{utc_now().timestamp()}", protocol="evm", metadata=None,
            actor="test",
        )  # fmt: skip


async def _free(db: Database) -> int:
    async with db.read() as conn:
        return await free_addresses(conn, protocol="evm", now=utc_now())


async def _pass(db: Database) -> list[str]:
    outcomes = await refill_pass(db, settings=REFILL, alerts=ALERTS, derive=derive_from_key)
    return [o.outcome for o in outcomes]


async def _pool_low_firing(db: Database) -> bool:
    await evaluate_all(db, ALERTS, set())
    async with db.read() as conn:
        return bool(await firing_subjects(conn, [POOL_LOW]))


async def _indices(db: Database) -> list[int]:
    async with db.read() as conn:
        rows = await conn.execute(select(address.c.derivation_index).order_by("derivation_index"))
        return [int(i) for i in rows.scalars()]


async def test_binding_through_the_low_water_mark_refills_without_an_alert(db) -> None:
    await _import(db, 15)
    await _enable(db)
    assert await _pass(db) == []  # 15 free: above the low-water mark (2 x 5)

    await _bind_until_free(db, 9)
    assert await _pass(db) == ["refilled"]
    assert await _free(db) == 29  # one batch: indices 15 … 34
    assert not await _pool_low_firing(db)
    assert await _indices(db) == list(range(35))
    async with db.read() as conn:
        report = await verify_pool(conn, account=ACCOUNT, protocol="evm", branch=0)
        audits = (await conn.execute(select(audit_log.c.actor, audit_log.c.details).where(
            audit_log.c.action == "address.import"))).all()  # fmt: skip
        sources = (await conn.execute(select(import_batch.c.source))).scalars().all()
    assert (report.verified, report.ok) == (35, True)
    assert audits[-1].actor == "refill" and audits[-1].details["imported"] == 20
    assert sources[-1] == f"refill:{ACCOUNT.fingerprint}/0/15-34"

    await _bind_until_free(db, 1)  # further down than a batch: whole batches to the mark
    assert await _pass(db) == ["refilled"]
    assert await _free(db) == 21


async def test_a_refill_at_its_maximum_index_leaves_pool_low_to_fire(db) -> None:
    await _import(db, 10)
    await _enable(db, max_index=14)  # five more to derive
    await _bind_until_free(db, 8)
    assert await _pass(db) == ["refilled"]
    assert (await _free(db), await _indices(db)) == (13, list(range(15)))

    await _bind_until_free(db, 4)
    assert await _pass(db) == ["exhausted"]
    assert await _pool_low_firing(db)


async def test_the_projection_counts_what_the_refill_may_still_derive(db) -> None:
    await _import(db, 12)
    await _bind_until_free(db, 10)

    async def projected() -> timedelta:
        async with db.read() as conn:
            now = utc_now()
            summary = (await summarize(conn, now=now, alerts=ALERTS))[0]
            assert summary.projected_exhaustion_at is not None
            return summary.projected_exhaustion_at - now

    alone = await projected()
    await _enable(db, max_index=41)  # 30 more to derive: the pool lasts four times as long
    assert 3.9 < await projected() / alone < 4.1
    await disable(db, choice=KeyChoice("evm", fingerprint=ACCOUNT.fingerprint), branch=0,
                  actor="test")  # fmt: skip
    assert await projected() / alone < 1.1
    assert await _pass(db) == []  # off: nothing derived


async def test_two_workers_never_import_the_same_range(db, settings) -> None:
    await _import(db, 10)
    await _enable(db)
    other = Database(settings.database_url, pool_size=2)
    try:
        # Both plan the same range from the same state, then race to import it.
        async with db.read() as conn:
            (refill,) = await repo.all_refills(conn)
        derived = derive_from_key(KEY, "evm", 0, 10, 20)
        outcomes = await asyncio.gather(
            import_range(db, refill, derived, start=10, end=30),
            import_range(other, refill, derived, start=10, end=30),
        )
        assert sorted(o.outcome != "refilled" for o in outcomes) == [False, True]
        assert await _indices(db) == list(range(30))

        # Free-running passes from both, binds between them: the indices stay one run.
        for _ in range(3):
            await _bind_until_free(db, 9)
            await asyncio.gather(_pass(db), _pass(other))
        indices = await _indices(db)
        assert indices == list(range(len(indices)))
        async with db.read() as conn:
            (refill,) = await repo.all_refills(conn)
            batches = (await conn.execute(select(import_batch.c.imported))).scalars().all()
        assert refill.next_index == len(indices) == sum(batches)
    finally:
        await other.dispose()


async def test_the_worker_refills_a_pool_that_fell_behind_and_pool_low_resolves(db) -> None:
    await _import(db, 10)
    await _bind_until_free(db, 3)  # faster than any refill: below the alert's threshold
    assert await _pool_low_firing(db)
    await _enable(db)
    stop = asyncio.Event()
    every = RefillSettings(batch_size=20, every=0.05)
    worker = asyncio.create_task(run_refill(db, every, ALERTS, derive_from_key, stop))
    try:

        async def resolved() -> bool:
            async with db.read() as conn:
                return not await firing_subjects(conn, [POOL_LOW])

        await wait_until_async(resolved, what="the refill resolves pool_low")
    finally:
        stop.set()
        await worker
    assert await _free(db) == 23


def test_the_refill_settings_read_durations_and_refuse_nonsense() -> None:
    settings = RefillSettings.model_validate({"every": "PT5S", "low_water": {"evm": 1000}})
    assert settings.every == timedelta(seconds=5) and settings.low_water == {"evm": 1000}
    for wrong in ({"every": 0}, {"low_water": {"evm": 0}}, {"batch_size": 0},
                  {"max_index": 2**31}, {"low_water": {"btc": 5}}):  # fmt: skip
        with pytest.raises(ValidationError):
            RefillSettings.model_validate(wrong)
