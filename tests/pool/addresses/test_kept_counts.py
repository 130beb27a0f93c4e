"""The pool's kept counts (pool.addresses.counts) equal a full count of the table after every
kind of write, on both databases: imports (staged ones too), binds, unbinds, orders allocated
and ended, archives and unarchives, SQL by hand; concurrent binds keep them exact; the
migration backfills them; a corrupted count is found, reported and repaired."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select, text, update

from chains.codec import address_parser
from pool.addresses import imports
from pool.addresses.counts import count_by_state, full_count_mismatches, recount
from pool.addresses.import_formats import read_rows
from pool.addresses.import_recovery import recover_imports
from pool.addresses.importer import ImportSource, validate_rows
from pool.addresses.repository import full_count_by_state
from pool.addresses.stats import summarize
from pool.bindings.service import bind_address
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.migrate import downgrade, upgrade
from pool.kit.tables import address, address_count
from pool.vocabulary import BATCH_COMMITTED
from tests.fixtures.helpers import (
    auth,
    import_into_pool,
    load_pool,
    random_addresses,
    stage_import,
)
from tests.fixtures.orders import order_body

BIND, UNBIND = "/api/v1/deposits/bind", "/api/v1/deposits/unbind"
ORDERS, POOL = "/api/v1/orders", "/api/v1/address-pool/addresses"


async def assert_kept_equals_full(db: Database, step: str = "") -> None:
    now = utc_now()
    async with db.read() as conn:
        kept = {k: v for k, v in (await count_by_state(conn, now=now)).items() if v}
        full = await full_count_by_state(conn, now=now)
        mismatches = await full_count_mismatches(conn)
    assert kept == {k: v for k, v in full.items() if v}, step
    assert mismatches == [], step


async def _import_file(db: Database, protocol: Any, count: int) -> None:
    """As `addrpool import` does: in stages on SQLite, one transaction on PostgreSQL."""
    lines = "address\n" + "\n".join(random_addresses(protocol, count)) + "\n"
    valid = validate_rows(read_rows(lines), protocol=protocol, parser=address_parser(protocol))
    checked = imports.CheckedRows(valid, {})
    source = ImportSource("t.csv", "cli:test", "csv")
    await imports.import_file(db, checked, protocol=protocol, source=source)


class Shop:
    """Random writes to the pool through the app, remembering what it can undo."""

    def __init__(self, client: httpx.AsyncClient, db: Database, key: str, seed: int) -> None:
        self.client, self.db, self.headers = client, db, auth(key)
        self.rng = random.Random(seed)
        self.bound: list[str] = []  # references
        self.orders: list[str] = []  # pending order ids
        self.archived: list[tuple[str, str]] = []  # (address, protocol)
        self.serial = 0

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{self.serial}"

    async def step(self) -> str:
        actions = {
            "bind": self.bind,
            "unbind": self.unbind,
            "order": self.order,
            "cancel": self.cancel,
            "archive": self.archive,
            "unarchive": self.unarchive,
            "import": self.add_imported,
        }
        name = self.rng.choice(["bind", *actions])  # binds twice as often
        await actions[name]()
        return name

    async def bind(self) -> None:
        body = {"depositReference": self._next("ref"), "protocol": self.rng.choice(["evm", "tron"])}
        answer = await self.client.post(BIND, json=body, headers=self.headers)
        if answer.status_code in (200, 201):
            self.bound.append(body["depositReference"])

    async def unbind(self) -> None:
        if self.bound:
            reference = self.bound.pop(self.rng.randrange(len(self.bound)))
            answer = await self.client.post(
                UNBIND, json={"depositReference": reference}, headers=self.headers
            )
            assert answer.status_code == 200, answer.text

    async def order(self) -> None:
        body = order_body(self._next("order"))
        answer = await self.client.post(ORDERS, json=body, headers=self.headers)
        if answer.status_code == 201:
            self.orders.append(answer.json()["data"]["orderId"])

    async def cancel(self) -> None:
        if self.orders:
            order_id = self.orders.pop(self.rng.randrange(len(self.orders)))
            answer = await self.client.post(f"{ORDERS}/{order_id}/cancel", headers=self.headers)
            assert answer.status_code == 200, answer.text

    async def archive(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(address.c.address, address.c.protocol))).all()
        text_, protocol = self.rng.choice(rows)
        answer = await self.client.patch(
            f"{POOL}/{text_}/archive", params={"protocol": protocol}, headers=self.headers
        )
        if answer.status_code == 200:  # 409: bound, or allocated to an order
            self.archived.append((text_, protocol))

    async def unarchive(self) -> None:
        if self.archived:
            text_, protocol = self.archived.pop(self.rng.randrange(len(self.archived)))
            answer = await self.client.patch(
                f"{POOL}/{text_}/unarchive", params={"protocol": protocol}, headers=self.headers
            )
            assert answer.status_code == 200, answer.text

    async def add_imported(self) -> None:
        await _import_file(self.db, self.rng.choice(["evm", "tron"]), self.rng.randint(1, 30))


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_writes_keep_the_counts_equal_to_a_full_count(
    orders_client: httpx.AsyncClient, db: Database, admin_key: str, seed: int
) -> None:
    await load_pool(db, "evm", 12)
    await load_pool(db, "tron", 8)
    await assert_kept_equals_full(db, "loaded")
    shop = Shop(orders_client, db, admin_key, seed)
    done = []
    for _ in range(60):
        done.append(await shop.step())
        await assert_kept_equals_full(db, " ".join(done))
    assert {"bind", "unbind", "order", "cancel", "archive", "import"} <= set(done)


async def test_staged_imports_count_once_handed_over_and_never_when_discarded(
    db: Database,
) -> None:
    await load_pool(db, "evm", 5)
    await stage_import(db, 7, BATCH_COMMITTED)  # committed, not yet handed over
    await stage_import(db, 4, "importing")  # abandoned before its commit
    await assert_kept_equals_full(db, "staged")
    async with db.read() as conn:
        assert (await count_by_state(conn, now=utc_now()))[("evm", "available")] == 5
    assert await recover_imports(db) == 2
    await assert_kept_equals_full(db, "recovered")
    async with db.read() as conn:
        summary = {s.protocol: s for s in await summarize(conn, now=utc_now())}
    assert (summary["evm"].total, summary["evm"].available) == (12, 12)


async def test_writes_by_hand_are_counted_too(db: Database) -> None:
    """The triggers count every writer: a bulk UPDATE, INSERT or DELETE typed by an operator."""
    evm = await load_pool(db, "evm", 20)
    async with db.write() as conn:
        await conn.execute(_set_status(evm[:6], "bound"))
        await conn.execute(_set_status(evm[16:], "archived"))
        rows = [
            {"protocol": "tron", "address": a, "hex20": f"{n:040x}", "status": "available",
             "created_at": utc_now()}
            for n, a in enumerate(random_addresses("tron", 9))
        ]  # fmt: skip
        await conn.execute(insert(address), rows)
        await conn.execute(
            delete(address).where(address.c.protocol == "tron", address.c.id % 3 == 0)
        )
    await assert_kept_equals_full(db, "by hand")


async def test_a_rolled_back_write_leaves_the_counts_as_they_were(db: Database) -> None:
    await load_pool(db, "evm", 4)
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(update(address).values(status="bound"))
            raise RuntimeError("rolled back")
    await assert_kept_equals_full(db)
    async with db.read() as conn:
        assert (await count_by_state(conn, now=utc_now()))[("evm", "available")] == 4


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_concurrent_binds_keep_the_counts_exact(settings: Any) -> None:
    db = Database(settings.database_url, pool_size=12)
    try:
        await load_pool(db, "evm", 150)

        async def one(n: int) -> None:
            await bind_address(db, reference=f"c{n}", protocol="evm", metadata=None, actor="t")

        await asyncio.gather(*(one(n) for n in range(120)))
        await assert_kept_equals_full(db, "after concurrent binds")
        async with db.read() as conn:
            counts = await count_by_state(conn, now=utc_now())
            slots = await conn.scalar(
                select(text("count(DISTINCT slot)")).select_from(address_count)
            )
        assert (counts[("evm", "bound")], counts[("evm", "available")]) == (120, 30)
        assert slots == 64  # spread over the slots, not one hot row
    finally:
        await db.dispose()


def _set_status(addresses: list[str], status: str) -> Any:
    return update(address).where(address.c.address.in_(addresses)).values(status=status)


async def test_the_migration_backfills_the_counts_from_the_table(db: Database) -> None:
    evm = await load_pool(db, "evm", 9)
    await load_pool(db, "tron", 3)
    async with db.write() as conn:
        await conn.execute(_set_status(evm[:4], "bound"))
        await conn.execute(_set_status(evm[4:5], "archived"))
    await downgrade(db, "0021")
    async with db.write() as conn:  # written while nothing keeps the counts
        await conn.execute(_set_status(evm[5:6], "allocated"))
    await upgrade(db)
    await assert_kept_equals_full(db, "backfilled")
    async with db.read() as conn:
        counts = await count_by_state(conn, now=utc_now())
    assert counts[("evm", "bound")] == 4 and counts[("evm", "allocated")] == 1
    assert counts[("tron", "available")] == 3


async def test_a_corrupted_count_is_found_and_a_recount_repairs_it(db: Database) -> None:
    await load_pool(db, "evm", 10)
    async with db.write() as conn:
        await conn.execute(
            update(address_count)
            .where(address_count.c.status == "available")
            .values(n=address_count.c.n + 3)
        )
    async with db.read() as conn:
        found = await full_count_mismatches(conn)
    assert [(m.protocol, m.status, m.counted) for m in found] == [("evm", "available", 10)]
    assert found[0].kept == 10 + 3 * len(await _slots(db))
    async with db.write() as conn:
        await recount(conn)
    await assert_kept_equals_full(db, "recounted")


async def _slots(db: Database) -> list[int]:
    async with db.read() as conn:
        query = select(address_count.c.slot).where(address_count.c.status == "available")
        return list((await conn.execute(query)).scalars())


async def test_an_import_of_addresses_already_in_the_pool_counts_only_the_new_ones(
    db: Database,
) -> None:
    first = random_addresses("evm", 6)
    await import_into_pool(db, "evm", first)
    await import_into_pool(db, "evm", [*first[:4], *random_addresses("evm", 3)])
    await assert_kept_equals_full(db, "overlapping imports")
    async with db.read() as conn:
        assert (await count_by_state(conn, now=utc_now()))[("evm", "available")] == 9
