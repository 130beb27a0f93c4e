"""A range recorded while a rescan of it commits first: what the rescan wrote is neither
written nor announced again, and the rest of the range is (pool.deposits.ledger, PostgreSQL).

SQLite cannot lose this race: its writers take the database lock before they read."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from pool.bindings import service as allocation
from pool.deposits import ledger
from pool.deposits.new_rows import ObservedTransfer
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import alert_transition, deposit, event
from tests.fixtures.helpers import load_pool, usdt_transfer


async def record(db: Database, transfers: list[ObservedTransfer]) -> ledger.LedgerChanges:
    async with db.write() as conn:
        return await ledger.record_transfers(
            conn, chain_id="devnet", protocol="evm", transfers=transfers, now=utc_now()
        )


async def count(db: Database, table: Any) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_rows_a_racing_rescan_wrote_are_skipped_and_the_rest_recorded(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = await load_pool(db, "evm", 3)
    async with db.write() as conn:
        result = await allocation.bind(
            conn, reference="payer", protocol="evm", metadata=None, actor="t", now=utc_now()
        )
    # The claim's order is the pool's, not the list's: take whichever address was bound.
    bound = result.binding.address
    spare, later = [a for a in loaded if a != bound]
    won = [usdt_transfer(bound, "ab"), usdt_transfer(spare, "ac")]  # attributed, unattributed
    first = await record(db, won)  # the rescan's transaction, committed
    assert (first.recorded, first.events) == (2, 1)
    events = await count(db, event)  # the binding's own event, and the deposit's
    assert await count(db, alert_transition) == 1

    async def read_before_the_rescan_committed(*_: object, **__: object) -> dict[Any, Any]:
        return {}

    monkeypatch.setattr(ledger.repo, "known_deposits", read_before_the_rescan_committed)
    new = usdt_transfer(later, "ad")
    second = await record(db, [*won, new])

    assert (second.recorded, second.events) == (1, 0)  # `later` is unbound: recorded, silent
    async with db.read() as conn:
        stored = (await conn.execute(select(deposit.c.tx_hash).order_by(deposit.c.tx_hash))).all()
    assert [tx for (tx,) in stored] == [t.tx_hash for t in [*won, new]]
    # Nobody hears twice of what the rescan recorded; the new one raised its own alert.
    assert (await count(db, alert_transition), await count(db, event)) == (2, events)
