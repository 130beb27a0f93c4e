"""A `pool_low` that fires while the protocol's xpub is marked for refill says why the refill
did not help, and what to do — off, at its maximum index, or not keeping up — in the alert's
details and the hooks' message; the `alert.address_pool_low` event keeps PayIn's fields. Both
databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from chains.hd import derive_from_key
from pool.alerts.hooks import message
from pool.alerts.notifications_repository import Notice
from pool.kit.db import Database
from pool.kit.tables import alert, event
from pool.refill.service import refill_pass
from pool.refill.switch import KeyChoice, disable
from pool.vocabulary import POOL_LOW_EVENT
from tests.pool.refill.test_refill import (
    ACCOUNT,
    ALERTS,
    POOL_LOW,
    REFILL,
    _bind_until_free,
    _enable,
    _import,
    _pool_low_firing,
)

FINGERPRINT = ACCOUNT.fingerprint


async def _firing(db: Database) -> dict[str, Any]:
    assert await _pool_low_firing(db)
    async with db.read() as conn:
        row = (await conn.execute(select(alert).where(alert.c.subject == POOL_LOW))).one()
        events = await conn.execute(select(event.c.data).where(event.c.type == POOL_LOW_EVENT))
        for data in events.scalars():
            # The webhook event: PayIn's fields only.
            assert set(data) == {"protocol", "available", "total", "threshold", "percentage"}
    return dict(row._mapping)


def _said(row: dict[str, Any]) -> str:
    notice = Notice(1, "fired", datetime.now(UTC), row)
    return str(message(notice)["text"])


async def test_a_refill_switched_off_is_named_with_the_command_that_switches_it_on(db) -> None:
    await _import(db, 10)
    await _enable(db)
    await disable(db, choice=KeyChoice("evm", fingerprint=FINGERPRINT), branch=0, actor="t")
    await _bind_until_free(db, 4)
    row = await _firing(db)
    refill = row["details"]["refill"]
    assert refill["reason"] == "refill_off"
    command = f"`addrpool refill enable {FINGERPRINT} --protocol evm --branch 0`"
    assert command in refill["action"]
    assert [(k["fingerprint"], k["enabled"], k["nextIndex"]) for k in refill["keys"]] == [
        (FINGERPRINT, False, 10)
    ]
    assert row["details"]["available"] == 4  # PayIn's fields stay
    assert "the refill is off" in _said(row)


async def test_a_refill_at_its_maximum_index_says_to_raise_it(db) -> None:
    await _import(db, 10)
    await _enable(db, max_index=14)
    await _bind_until_free(db, 8)
    await refill_pass(db, settings=REFILL, alerts=ALERTS, derive=derive_from_key)
    await _bind_until_free(db, 4)
    row = await _firing(db)
    refill = row["details"]["refill"]
    assert refill["reason"] == "max_index_reached"
    assert "--max-index N" in refill["action"]
    assert [(k["nextIndex"], k["maxIndex"]) for k in refill["keys"]] == [(15, 14)]
    assert "maximum index" in _said(row)


async def test_a_refill_that_did_not_keep_up_says_so_and_what_to_raise(db) -> None:
    await _import(db, 10)
    await _enable(db)  # on, indices left; but no refill ran before the binds took the pool
    await _bind_until_free(db, 3)
    row = await _firing(db)
    refill = row["details"]["refill"]
    assert refill["reason"] == "not_keeping_up"
    assert "addrpool worker" in refill["action"] and "--low-water N" in refill["action"]
    assert refill["keys"][0]["refilledAt"] is None
    assert "did not keep up" in _said(row)


async def test_a_pool_without_a_refill_has_no_refill_details(db) -> None:
    await _import(db, 10)
    await _bind_until_free(db, 4)
    row = await _firing(db)
    assert "refill" not in row["details"]
    assert _said(row).endswith("below the threshold of 5")
