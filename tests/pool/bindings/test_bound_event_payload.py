"""`deposit.address_bound` is built in SQL by PostgreSQL's one-statement bind and in Python by
the step-by-step bind (SQLite, binds through PayIn): receivers must not tell them apart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.bindings import service as allocation
from pool.bindings.events import BOUND_EVENT_FIELDS, bound_event_data
from pool.bindings.records import BindIntent
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.secret_box import secret_box
from pool.kit.tables import delivery, event
from pool.vocabulary import ADDRESS_BOUND
from pool.webhooks import endpoints as webhooks
from tests.fixtures.helpers import load_pool

METADATA = {"tier": "gold", "n": 3, "ratio": 2.5, "ok": True, "none": None, "list": [1, "a"]}


async def _subscribe(db: Database, settings: Settings) -> None:
    async def work(conn: AsyncConnection) -> None:
        await webhooks.create_endpoint(
            conn,
            secret_box(settings),
            url="https://receiver.example/hook",
            events=[ADDRESS_BOUND],
            scheme="body",
            description=None,
            now=utc_now(),
        )

    await db.run_write(work)


async def _bound_events(db: Database) -> list[tuple[dict[str, Any], int]]:
    """Each `deposit.address_bound` payload, oldest first, with its number of deliveries."""
    deliveries = select(func.count()).where(delivery.c.event_seq == event.c.seq).scalar_subquery()
    statement = (
        select(event.c.data, deliveries).where(event.c.type == ADDRESS_BOUND).order_by(event.c.seq)
    )
    async with db.read() as conn:
        return [(row[0], row[1]) for row in await conn.execute(statement)]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has one path
async def test_sql_and_python_binds_store_the_same_payload(
    db: Database, settings: Settings
) -> None:
    await load_pool(db, "evm", 2)
    await _subscribe(db, settings)
    now = utc_now()
    intent = BindIntent("order_1", "evm", METADATA, "test", now)

    async def in_sql(conn: AsyncConnection) -> Any:
        return await allocation.bind(
            conn, reference="order_1", protocol="evm", metadata=METADATA, actor="test", now=now
        )

    async def unbind(conn: AsyncConnection) -> Any:
        return await allocation.unbind(
            conn, actor="test", now=now, cooldown=timedelta(days=1), reference="order_1"
        )

    async def in_python(conn: AsyncConnection) -> Any:
        return await allocation._bind_step_by_step(conn, intent)

    first = (await db.run_write(in_sql)).binding
    await db.run_write(unbind)
    again = await db.run_write(in_python)  # the reference's previous address comes back to it
    assert again.address == first.address

    (sql_payload, sql_deliveries), (python_payload, python_deliveries) = await _bound_events(db)
    # Bytes compare keys, their order, values and JSON types (1 vs 1.0 vs true) at once.
    assert orjson.dumps(sql_payload) == orjson.dumps(python_payload)
    assert orjson.dumps(sql_payload) == orjson.dumps(bound_event_data(first))
    assert list(sql_payload) == [field.key for field in BOUND_EVENT_FIELDS]
    assert sql_payload["metadata"] == METADATA
    assert sql_deliveries == python_deliveries == 1
