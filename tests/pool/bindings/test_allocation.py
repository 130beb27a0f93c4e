from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pool.bindings import service as allocation
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.db import Database
from pool.kit.errors import InsufficientAddresses, NotFound
from pool.kit.tables import address, binding, event
from tests.fixtures.helpers import load_pool

COOLDOWN = timedelta(days=7)


# Every test runs each way a bind is made: inside a caller's transaction (`bind`, step by step
# on SQLite, one statement on PostgreSQL), and as the API makes it (`bind_address`: on SQLite
# one trip to the writer's thread, committed with the binds that queued beside it).
_WAYS = {"way": "in_a_transaction"}


@pytest.fixture(autouse=True, params=["in_a_transaction", "use_case"])
def bind_way(request: pytest.FixtureRequest) -> Iterator[str]:
    _WAYS["way"] = request.param
    yield request.param
    _WAYS["way"] = "in_a_transaction"


async def _bind(db: Database, reference: str, protocol="evm", *, now=None, metadata=None):
    if _WAYS["way"] == "use_case":
        return await allocation.bind_address(
            db, reference=reference, protocol=protocol, metadata=metadata, actor="test", now=now
        )

    async def work(conn):
        return await allocation.bind(
            conn,
            reference=reference,
            protocol=protocol,
            metadata=metadata,
            actor="test",
            now=now or utc_now(),
        )

    return await db.run_write(work)


async def _unbind(db: Database, *, now=None, **target):
    async def work(conn):
        return await allocation.unbind(
            conn, actor="test", now=now or utc_now(), cooldown=COOLDOWN, **target
        )

    return await db.run_write(work)


async def _count(db: Database, statement) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(statement))


async def test_bind_is_idempotent_and_keeps_the_first_metadata(db: Database) -> None:
    await load_pool(db, "evm", 3)
    first = await _bind(db, "user_1", metadata={"tier": "gold"})
    again = await _bind(db, "user_1", metadata={"tier": "other"})
    assert first.created and not again.created
    assert again.binding == first.binding
    assert again.binding.metadata == {"tier": "gold"}
    assert await _count(db, select(func.count()).select_from(event)) == 1


async def test_references_get_distinct_addresses_per_protocol(db: Database) -> None:
    await load_pool(db, "evm", 3)
    await load_pool(db, "tron", 3)
    a = await _bind(db, "a")
    b = await _bind(db, "b")
    a_tron = await _bind(db, "a", "tron")
    assert a.binding.address != b.binding.address
    assert a_tron.binding.address.startswith("T")


async def test_unbind_puts_the_address_in_cooldown_away_from_others(db: Database) -> None:
    await load_pool(db, "evm", 1)
    bound = await _bind(db, "alice")
    unbound = await _unbind(db, reference="alice")
    assert [u.address for u in unbound] == [bound.binding.address]
    assert unbound[0].cooldown_until > utc_now() + COOLDOWN - timedelta(minutes=1)
    with pytest.raises(InsufficientAddresses):
        await _bind(db, "bob")


async def test_cooled_down_address_is_reused_after_cooldown(db: Database) -> None:
    await load_pool(db, "evm", 1)
    bound = await _bind(db, "alice")
    await _unbind(db, reference="alice")
    later = utc_now() + COOLDOWN + timedelta(seconds=1)
    bob = await _bind(db, "bob", now=later)
    assert bob.binding.address == bound.binding.address


async def test_rebind_during_cooldown_returns_the_same_address_as_a_new_binding(
    db: Database,
) -> None:
    await load_pool(db, "evm", 5)
    first = await _bind(db, "alice")
    await _unbind(db, reference="alice")
    again = await _bind(db, "alice")
    assert again.created
    assert again.binding.address == first.binding.address
    assert again.binding.id != first.binding.id
    assert await _count(db, select(func.count()).select_from(binding)) == 2


async def test_allocation_order_is_never_used_first_then_longest_recycled(db: Database) -> None:
    addresses = await load_pool(db, "evm", 2)
    t0 = utc_now()
    a = await _bind(db, "a", now=t0)
    b = await _bind(db, "b", now=t0)
    assert [a.binding.address, b.binding.address] == addresses
    await _unbind(db, reference="b", now=t0 + timedelta(seconds=1))
    await _unbind(db, reference="a", now=t0 + timedelta(seconds=2))
    fresh = await load_pool(db, "evm", 1)
    later = t0 + COOLDOWN + timedelta(minutes=1)
    picks = [(await _bind(db, ref, now=later)).binding.address for ref in ("x", "y", "z")]
    assert picks == [fresh[0], b.binding.address, a.binding.address]


async def test_unbind_forms(db: Database) -> None:
    await load_pool(db, "evm", 3)
    await load_pool(db, "tron", 3)
    await _bind(db, "both")
    await _bind(db, "both", "tron")
    only_tron = await _unbind(db, reference="both", protocol="tron")
    assert [u.protocol for u in only_tron] == ["tron"]
    await _bind(db, "both", "tron")
    everything = await _unbind(db, reference="both")
    assert sorted(u.protocol for u in everything) == ["evm", "tron"]
    c = await _bind(db, "c")
    async with db.read() as conn:
        address_id = await conn.scalar(
            select(address.c.id).where(address.c.address == c.binding.address)
        )
    by_address = await _unbind(db, address_id=address_id)
    assert by_address[0].deposit_reference == "c"
    with pytest.raises(NotFound):
        await _unbind(db, reference="c")


async def test_exhausted_pool_writes_nothing(db: Database) -> None:
    with pytest.raises(InsufficientAddresses, match="protocol: evm"):
        await _bind(db, "nobody")
    assert await _count(db, select(func.count()).select_from(binding)) == 0
    assert await _count(db, select(func.count()).select_from(event)) == 0


async def test_bind_and_its_event_roll_back_together(db: Database) -> None:
    await load_pool(db, "evm", 1)
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await allocation.bind(
                conn, reference="r", protocol="evm", metadata=None, actor="t", now=utc_now()
            )
            raise RuntimeError("crash after the bind, before commit")
    assert await _count(db, select(func.count()).select_from(binding)) == 0
    assert await _count(db, select(func.count()).select_from(event)) == 0
    statuses = await _count(
        db, select(func.count()).select_from(address).where(address.c.status == "available")
    )
    assert statuses == 1


async def test_bind_and_unbind_write_their_events(db: Database) -> None:
    await load_pool(db, "evm", 1)
    bound = await _bind(db, "r", metadata={"k": 1})
    await _unbind(db, reference="r")
    async with db.read() as conn:
        rows = (await conn.execute(select(event.c.type, event.c.data).order_by(event.c.seq))).all()
    assert [r[0] for r in rows] == ["deposit.address_bound", "deposit.address_unbound"]
    # The same payload, in the same key order, whichever way the bind was written.
    assert list(rows[0][1]) == ["depositReference", "protocol", "address", "boundAt", "metadata"]
    assert rows[0][1]["boundAt"] == isoformat_z(bound.binding.bound_at)
    assert rows[0][1]["address"] == bound.binding.address
    assert rows[0][1]["metadata"] == {"k": 1}
    assert rows[1][1]["depositReference"] == "r"


async def test_rebind_after_the_old_address_went_to_someone_else_gets_a_new_one(
    db: Database,
) -> None:
    await load_pool(db, "evm", 2)
    t0 = utc_now()
    first = await _bind(db, "alice", now=t0)
    await _unbind(db, reference="alice", now=t0)
    await _bind(db, "filler", now=t0)  # takes the never-used address
    later = t0 + COOLDOWN + timedelta(minutes=1)
    bob = await _bind(db, "bob", now=later)
    assert bob.binding.address == first.binding.address
    with pytest.raises(InsufficientAddresses):
        await _bind(db, "alice", now=later)
    await _unbind(db, reference="filler", now=later)
    alice = await _bind(db, "alice", now=later + COOLDOWN + timedelta(minutes=1))
    assert alice.created and alice.binding.address != first.binding.address


async def test_archived_address_is_never_allocated(db: Database) -> None:
    from chains.codec import address_parser
    from pool.addresses.archive import change_archived

    addresses = await load_pool(db, "evm", 1)
    async with db.write() as conn:
        await change_archived(
            conn,
            parsed=address_parser("evm")(addresses[0]),
            archived=True,
            actor="t",
            now=utc_now(),
        )
    with pytest.raises(InsufficientAddresses):
        await _bind(db, "anyone")


async def test_the_claim_hint_never_hides_an_address(db: Database) -> None:
    addresses = await load_pool(db, "evm", 3)
    allocation._never_used_from["evm"] = 10**12  # a stale hint, past every id
    assert (await _bind(db, "a")).binding.address == addresses[0]
    with pytest.raises(RuntimeError):  # a claim rolled back after the hint moved past it
        async with db.write() as conn:
            await allocation.bind(
                conn, reference="gone", protocol="evm", metadata=None, actor="t", now=utc_now()
            )
            raise RuntimeError("rolled back")
    handed_out = {(await _bind(db, ref)).binding.address for ref in ("b", "c")}
    assert handed_out == set(addresses[1:])
    with pytest.raises(InsufficientAddresses):
        await _bind(db, "d")
