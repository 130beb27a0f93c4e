"""`database_pooled`: the settings for a transaction-pooling PgBouncer, on PostgreSQL itself
(the whole topology, with PgBouncer, is tests/scripts/cluster). Every statement prepared unnamed
and inside a transaction, JSON still read back as JSON, and the locks on the session URL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pool.kit import locks
from pool.kit.db import Database

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def test_a_pooled_database_works_with_unnamed_statements_in_transactions(
    database_url: str,
) -> None:
    db = Database(database_url, pool_size=2, pooled=True, session_url=database_url)
    try:
        async with db.autocommit() as conn:
            # a transaction after all: a pooler keeps the connection for it, start to end
            assert conn.in_transaction()
            assert await conn.scalar(text("SELECT CAST(:v AS jsonb)"), {"v": '{"a": 1}'}) == {
                "a": 1
            }
            named = await conn.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
            assert named == 0  # none kept by name on the server connection
        async with db.session() as lock_conn:
            assert not lock_conn.in_transaction()  # a session of its own, in autocommit
        async with locks.try_holding(db, 4242) as held:
            assert held
    finally:
        await db.dispose()
