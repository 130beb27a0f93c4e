import pytest
from sqlalchemy import func, select

from chains.codec import address_parser
from pool.clock import utc_now
from pool.db import Database
from pool.errors import ValidationFailed
from pool.import_formats import read_rows
from pool.importer import ImportSource, import_addresses
from pool.tables import address, import_batch
from tests.helpers import random_addresses


async def _import(db: Database, lines, protocol="evm", **flags):
    async with db.write() as conn:
        return await import_addresses(
            conn,
            protocol=protocol,
            rows=read_rows("\n".join(lines), format="lines"),
            parser=address_parser(protocol),
            source=ImportSource("test.txt", "test"),
            now=utc_now(),
            **flags,
        )


async def _pool_size(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(address)))


async def test_header_blank_lines_bom_and_duplicates(db: Database) -> None:
    addresses = random_addresses("evm", 3)
    lines = ["\ufeffaddress", "", f"  {addresses[0]}  ", addresses[1].lower(), addresses[0]]
    lines.append(addresses[2] + "\r")
    report = await _import(db, lines)
    assert (report.imported, report.duplicates_in_input, report.already_in_pool) == (3, 1, 0)
    async with db.read() as conn:
        stored = set((await conn.scalars(select(address.c.address))).all())
    assert stored == set(addresses)  # stored checksummed, whatever case came in


async def test_reimport_is_a_no_op(db: Database) -> None:
    lines = random_addresses("tron", 4)
    await _import(db, lines, "tron")
    again = await _import(db, lines, "tron")
    assert (again.imported, again.already_in_pool) == (0, 4)
    assert await _pool_size(db) == 4


async def test_one_bad_line_refuses_everything_and_lists_each_bad_line(db: Database) -> None:
    good = random_addresses("evm", 2)
    tron = random_addresses("tron", 1)[0]
    with pytest.raises(ValidationFailed) as caught:
        await _import(db, [good[0], "0xnothex", tron, good[1]])
    details = caught.value.details
    assert [d["line"] for d in details] == [2, 3]
    assert "Tron address" in details[1]["message"]
    assert await _pool_size(db) == 0
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(import_batch)) == 0


async def test_skip_invalid_imports_the_good_lines(db: Database) -> None:
    good = random_addresses("evm", 2)
    report = await _import(db, [good[0], "junk", good[1]], skip_invalid=True)
    assert report.imported == 2 and [p.line for p in report.invalid] == [2]


async def test_dry_run_writes_nothing(db: Database) -> None:
    lines = random_addresses("evm", 3)
    await _import(db, lines[:1])
    report = await _import(db, lines, dry_run=True)
    assert (report.imported, report.already_in_pool) == (2, 1)
    assert await _pool_size(db) == 1
