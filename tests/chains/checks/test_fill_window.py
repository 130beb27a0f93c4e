"""The audit's repair of a hole in the watcher's block window (chains.checks.audit
.store_refilled_window) never overwrites what the watcher stored, and waits for the chain
leader's row (invariant 15, docs/design.md): the window is the leader's state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from chains.checks.audit import store_refilled_window
from pool.chain_state import repository as chain_state
from pool.kit.db import Database
from pool.kit.tables import chain_block, chain_leader


async def window(db: Database) -> dict[int, str]:
    async with db.read() as conn:
        rows = await conn.execute(select(chain_block.c.number, chain_block.c.hash))
        return {number: block_hash for number, block_hash in rows}


async def test_a_refill_adds_only_the_heights_still_missing(db: Database) -> None:
    async with db.write() as conn:  # stored by the watcher after the audit read its headers
        await conn.execute(
            insert(chain_block).values(
                chain_id="devnet", number=11, hash="0xw11", parent_hash="0x10"
            )
        )
    re_read = [(10, "0xa10", "0x09"), (11, "0xstale11", "0xa10"), (12, "0xa12", "0xstale11")]
    assert await store_refilled_window(db, "devnet", re_read) == 2
    assert await window(db) == {10: "0xa10", 11: "0xw11", 12: "0xa12"}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_the_audit_waits_for_a_transaction_of_the_leader(db: Database) -> None:
    """PostgreSQL: the leader's transaction holds the chain's row; the audit's refill, taking the
    same row first, cannot interleave with it (SQLite has one writer at a time anyway)."""
    async with db.write() as conn:
        await conn.execute(
            insert(chain_leader).values(
                chain_id="devnet", epoch=3, holder="host:1", taken_at=datetime.now(UTC)
            )
        )
    leader_holds = asyncio.Event()
    leader_may_commit = asyncio.Event()

    async def leader() -> None:
        async with db.write() as conn:
            await chain_state.lock_leadership(conn, chain_id="devnet", idle_timeout_ms=30_000)
            leader_holds.set()
            await leader_may_commit.wait()
            await conn.execute(
                insert(chain_block).values(
                    chain_id="devnet", number=11, hash="0xw11", parent_hash="0x10"
                )
            )

    async def audit() -> int:
        return await store_refilled_window(db, "devnet", [(11, "0xstale11", "0x10")])

    leading = asyncio.create_task(leader())
    await leader_holds.wait()
    auditing = asyncio.create_task(audit())
    await asyncio.sleep(0.5)
    assert not auditing.done()  # waiting for the leader's row
    leader_may_commit.set()
    _, stored = await asyncio.gather(leading, auditing)
    assert stored == 0  # the height the leader stored meanwhile stays the leader's
    assert await window(db) == {11: "0xw11"}
