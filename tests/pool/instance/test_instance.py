"""A database belongs to one network: recorded by the first process of that network, told by
its API keys when it predates the record, and refused to a process of the other network."""

import asyncio

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from pool.instance.service import check_network, claim_network
from pool.keys.service import revoke_key
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import ConfigurationError, DatabaseNetworkMismatch
from pool.kit.migrate import current_revision, downgrade, head_revision, upgrade
from pool.kit.tables import audit_log, instance
from tests.fixtures.helpers import make_key

WHERE = "the test database"


async def _claim(db: Database, network: str) -> None:
    async with db.write() as conn:
        await claim_network(conn, network=network, database=WHERE, actor="test", now=utc_now())


async def _recorded(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(instance.c.network))).scalars())


async def _audited(db: Database) -> list[tuple[str, dict]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(audit_log.c.subject, audit_log.c.details).where(
                audit_log.c.action == "database.network"
            )
        )
        return [(subject, details) for subject, details in rows]


async def test_the_first_process_records_its_network_and_the_other_is_refused(db) -> None:
    await _claim(db, "testnet")
    await _claim(db, "testnet")  # the same network again: fine, recorded once
    assert await _recorded(db) == ["testnet"]
    assert await _audited(db) == [("testnet", {"network": "testnet", "decidedBy": "first process"})]
    with pytest.raises(DatabaseNetworkMismatch) as refused:
        await _claim(db, "mainnet")
    assert refused.value.code == "DATABASE_NETWORK_MISMATCH"
    assert refused.value.message == (
        "the database at the test database belongs to testnet (ADDRPOOL_NETWORK=mainnet here): "
        "run with ADDRPOOL_NETWORK=testnet or use another database"
    )
    assert await _recorded(db) == ["testnet"]


async def test_a_database_with_live_keys_is_not_claimed_by_a_testnet_process(db) -> None:
    """A database from before the record: its keys tell, and nothing is written on refusal."""
    await make_key(db, scopes=None, prefix="pk_live_")
    with pytest.raises(
        DatabaseNetworkMismatch,
        match=r"belongs to mainnet, as its pk_live_ API keys show \(ADDRPOOL_NETWORK=testnet",
    ):
        await _claim(db, "testnet")
    assert await _recorded(db) == [] and await _audited(db) == []
    await _claim(db, "mainnet")
    assert await _recorded(db) == ["mainnet"]
    assert await _audited(db) == [("mainnet", {"network": "mainnet", "decidedBy": "keys"})]


async def test_revoked_keys_tell_only_when_no_key_is_active(db) -> None:
    revoked = await make_key(db, scopes=None, prefix="pk_live_")
    async with db.write() as conn:
        await revoke_key(conn, id_or_prefix=revoked[:12], actor="t", now=utc_now())
    with pytest.raises(DatabaseNetworkMismatch, match="belongs to mainnet"):
        await _claim(db, "testnet")
    await make_key(db, scopes=None, prefix="pk_test_")  # an active key outweighs a revoked one
    await _claim(db, "testnet")
    assert await _recorded(db) == ["testnet"]


async def test_active_keys_of_both_networks_leave_it_to_the_operator(db) -> None:
    live = await make_key(db, scopes=None, prefix="pk_live_")
    await make_key(db, scopes=None, prefix="pk_test_")
    for network in ("testnet", "mainnet"):
        with pytest.raises(ConfigurationError, match="active API keys of both networks") as refused:
            await _claim(db, network)
        assert refused.value.code == "DATABASE_NETWORK_UNDECIDED"
    assert await _recorded(db) == []
    async with db.read() as conn:  # looking at or revoking keys is still possible meanwhile
        await check_network(conn, network="testnet", database=WHERE)
    async with db.write() as conn:
        await revoke_key(conn, id_or_prefix=live[:12], actor="t", now=utc_now())
    await _claim(db, "testnet")
    assert await _recorded(db) == ["testnet"]


async def test_checking_records_nothing_but_refuses_the_other_network(db) -> None:
    async with db.read() as conn:
        await check_network(conn, network="mainnet", database=WHERE)
    assert await _recorded(db) == []
    await _claim(db, "mainnet")
    async with db.read() as conn:
        await check_network(conn, network="mainnet", database=WHERE)
        with pytest.raises(DatabaseNetworkMismatch, match="belongs to mainnet"):
            await check_network(conn, network="testnet", database=WHERE)


async def test_racing_first_processes_of_both_networks_record_exactly_one(settings) -> None:
    """Two processes (two engines) open a fresh database at once: one wins, the other is refused."""
    first, second = Database(settings.database_url), Database(settings.database_url)
    try:
        outcomes = await asyncio.gather(
            _claim(first, "testnet"), _claim(second, "mainnet"), return_exceptions=True
        )
        recorded = await _recorded(first)
    finally:
        await first.dispose()
        await second.dispose()
    assert len(recorded) == 1
    winner = ["testnet", "mainnet"].index(recorded[0])
    assert outcomes[winner] is None
    assert isinstance(outcomes[1 - winner], DatabaseNetworkMismatch)


async def test_a_database_upgraded_from_0010_is_told_by_its_keys(db) -> None:
    await downgrade(db, "0010")
    assert await current_revision(db) == "0010"
    await make_key(db, scopes=None, prefix="pk_live_")
    await upgrade(db)
    assert await current_revision(db) == head_revision()
    assert await _recorded(db) == []
    with pytest.raises(DatabaseNetworkMismatch, match="belongs to mainnet"):
        await _claim(db, "testnet")


async def test_the_record_holds_one_known_network(db) -> None:
    """The table's CHECKs: one row, and only a network of the vocabulary."""
    await _claim(db, "testnet")
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(
                instance.insert().values(id=2, network="mainnet", created_at=utc_now())
            )
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(delete(instance))
            await conn.execute(
                instance.insert().values(id=1, network="devnet", created_at=utc_now())
            )
    assert await _recorded(db) == ["testnet"]
