"""Upstream mode's local record converging on what PayIn says (both databases)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from chains.codec import address_parser
from pool.addresses.repository import find_address_id
from pool.bindings import service as allocation
from pool.bindings.records import BindResult
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address, binding, event
from pool.upstream.binding import _record_binding
from tests.fixtures.helpers import load_pool


async def record(db: Database, reference: str, text: str) -> BindResult:
    parsed = address_parser("evm")(text)
    async with db.read() as conn:
        address_id = await find_address_id(conn, protocol="evm", text=parsed.text)
    assert address_id is not None

    async def work(conn: Any) -> BindResult:
        return await _record_binding(
            conn,
            parsed=parsed,
            address_id=address_id,
            reference=reference,
            metadata=None,
            actor="t",
            now=utc_now(),
            cooldown=timedelta(days=7),
        )

    return await db.run_write(work)


async def local_bind(db: Database, reference: str) -> str:
    async def work(conn: Any) -> BindResult:
        return await allocation.bind(
            conn, reference=reference, protocol="evm", metadata=None, actor="t", now=utc_now()
        )

    return (await db.run_write(work)).binding.address


async def holders(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(binding.c.deposit_reference, address.c.address)
            .join(address, address.c.id == binding.c.address_id)
            .where(binding.c.unbound_at.is_(None))
        )
        return {r: a for r, a in rows.all()}


async def event_types(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(event.c.type).order_by(event.c.seq))).scalars())


async def test_a_binding_payin_made_is_recorded_once(db: Database) -> None:
    [first, _] = await load_pool(db, "evm", 2)
    assert (await record(db, "r", first)).created is True
    assert (await record(db, "r", first)).created is False
    assert await holders(db) == {"r": first}
    assert await event_types(db) == ["deposit.address_bound"]


async def test_a_reference_payin_moved_gives_up_its_old_address_here(db: Database) -> None:
    pool = await load_pool(db, "evm", 3)
    old = await local_bind(db, "r")
    new = next(a for a in pool if a != old)
    await record(db, "r", new)
    assert await holders(db) == {"r": new}
    assert await event_types(db) == [
        "deposit.address_bound",
        "deposit.address_unbound",
        "deposit.address_bound",
    ]


async def test_an_address_payin_gave_to_another_reference_leaves_its_old_holder(
    db: Database,
) -> None:
    await load_pool(db, "evm", 3)
    held = await local_bind(db, "someone-else")
    await record(db, "r", held)
    assert await holders(db) == {"r": held}
