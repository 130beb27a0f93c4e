"""A deposit to an address of an import that committed but has not handed its rows over yet
(pool.addresses.staged_import): the address is the pool's, so the deposit is recorded,
unattributed (nobody could have been given it yet), and alerted like any other."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pool.deposits import ledger
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import deposit
from tests.fixtures.helpers import stage_import, usdt_transfer


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # only SQLite stages imports
async def test_a_deposit_to_a_committed_import_is_recorded_before_its_hand_over(
    db: Database,
) -> None:
    [committed] = await stage_import(db, 1, "committed")
    async with db.write() as conn:
        changes = await ledger.record_transfers(
            conn,
            chain_id="devnet",
            protocol="evm",
            transfers=[usdt_transfer(committed)],
            now=utc_now(),
        )
    assert (changes.recorded, changes.events) == (1, 0)  # unattributed: no webhook
    async with db.read() as conn:
        row = (await conn.execute(select(deposit.c.binding_id, deposit.c.amount))).one()
    assert row == (None, 5_000_000)
