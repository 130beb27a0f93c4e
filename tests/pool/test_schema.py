"""The migrations build what `pool/tables.py` describes, on both databases, and round-trip."""

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import insert, inspect, select

from pool.db import Database, dumps_json
from pool.migrate import current_revision, downgrade, head_revision, upgrade
from pool.tables import address, deposit, event, metadata


async def test_migrated_schema_matches_the_table_definitions(db: Database) -> None:
    def describe(connection):
        inspector = inspect(connection)
        return {
            name: {c["name"] for c in inspector.get_columns(name)}
            for name in inspector.get_table_names()
            if name != "alembic_version"
        }

    async with db.read() as conn:
        actual = await conn.run_sync(describe)
    expected = {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    assert actual == expected
    assert await current_revision(db) == head_revision()


async def test_downgrade_and_upgrade_again(db: Database) -> None:
    await downgrade(db, "base")
    assert await current_revision(db) is None
    await upgrade(db)
    assert await current_revision(db) == head_revision()


async def test_huge_amounts_and_aware_timestamps_survive_both_databases(db: Database) -> None:
    amount = 2**200 + 12345  # far beyond SQLite's 2^63 integers and a REAL's 53 bits
    moment = datetime(2026, 11, 21, 10, 30, 0, 123000, tzinfo=timezone(timedelta(hours=7)))
    async with db.write() as conn:
        address_id = (
            await conn.execute(
                insert(address)
                .values(
                    protocol="evm",
                    address="0x" + "1" * 40,
                    hex20="1" * 40,
                    status="available",
                    created_at=moment,
                )
                .returning(address.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(deposit).values(
                id="dep_x",
                chain_id="ethereum-sepolia",
                tx_hash="0x" + "ab" * 32,
                log_index=0,
                block_number=1,
                block_hash="0x" + "cd" * 32,
                from_address="0x" + "2" * 40,
                address_id=address_id,
                token_contract="0x" + "3" * 40,
                currency="USDT",
                amount=amount,
                decimals=18,
                status="pending",
                detected_at=moment,
            )
        )
    async with db.read() as conn:
        stored_amount, detected_at = (
            await conn.execute(select(deposit.c.amount, deposit.c.detected_at))
        ).one()
    assert stored_amount == amount
    assert detected_at == moment and detected_at.tzinfo is not None
    assert detected_at.astimezone(UTC).hour == 3


async def test_json_columns_keep_what_orjson_cannot_write(db: Database) -> None:
    """JSON columns go through orjson, and to the standard library for what it refuses."""
    payloads = [
        {"amount": "1.5", "nested": {"list": [1, None, True]}, "text": "naïve ✓"},
        {"huge": 2**80 + 1},  # beyond 64 bits, and not a float either
        {1: "a key that is not a string"},
    ]
    async with db.write() as conn:
        for n, data in enumerate(payloads):
            await conn.execute(
                insert(event).values(
                    id=f"evt_json{n}", type="test.json", data=data, created_at=datetime.now(UTC)
                )
            )
    async with db.read() as conn:
        rows = await conn.execute(
            select(event.c.data).where(event.c.type == "test.json").order_by(event.c.seq)
        )
        stored = [row.data for row in rows]
    assert stored == [payloads[0], {"huge": 2**80 + 1}, {"1": "a key that is not a string"}]
    assert type(stored[1]["huge"]) is int
    assert dumps_json({"a": 1}) == '{"a":1}'  # orjson's compact form: the fast path was taken
