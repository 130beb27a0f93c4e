import gc

from sqlalchemy import insert, update

from chains.watch import address_book
from chains.watch.address_book import AddressBook
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address
from tests.fixtures.helpers import load_pool, random_evm_address, stage_import


async def _insert_with_id(db: Database, address_id: int) -> str:
    text = random_evm_address()
    async with db.write() as conn:
        await conn.execute(
            insert(address).values(
                id=address_id,
                protocol="evm",
                address=text,
                hex20=text[2:].lower(),
                status="available",
                created_at=utc_now(),
            )
        )
    return text[2:].lower()


async def test_refresh_adds_only_new_addresses_of_its_protocol(db: Database) -> None:
    evm = await load_pool(db, "evm", 5)
    await load_pool(db, "tron", 3)
    book = AddressBook("evm")
    assert await book.refresh(db) == 5
    assert {a[2:].lower() for a in evm} == set(book.addresses)
    more = await load_pool(db, "evm", 2)
    assert await book.refresh(db) == 2
    assert more[0][2:].lower() in book
    assert await book.refresh(db) == 0
    # Objects the GC tracks cost a pause per full collection that grows with the pool.
    tracked = len(gc.get_objects())
    await load_pool(db, "evm", 300)
    assert await book.refresh(db) == 300
    assert len(gc.get_objects()) - tracked < 50


async def test_an_import_committed_out_of_id_order_is_still_found(db: Database) -> None:
    """On PostgreSQL an id is taken before commit: a lower id can appear after a higher one."""
    book = AddressBook("evm", count_check_seconds=0)
    await _insert_with_id(db, 1000)
    await book.refresh(db)
    straggler = await _insert_with_id(db, 500)  # below the id the book has already passed
    assert await book.refresh(db) == 1
    assert straggler in book
    assert len(book) == 2


async def test_an_import_in_flight_is_not_watched_until_it_commits(db: Database, caplog) -> None:
    """Its rows are not the pool's (it may yet fail and take them away), and the count check
    knows it: no reload."""
    pooled = await load_pool(db, "evm", 3)
    in_flight = [a[2:].lower() for a in await stage_import(db, 4, "importing")]
    book = AddressBook("evm", count_check_seconds=0)
    assert await book.refresh(db) == 3
    assert await book.refresh(db) == 0
    assert not set(in_flight) & set(book.addresses)
    assert "out of step" not in caplog.text
    assert {a[2:].lower() for a in pooled} == set(book.addresses)


async def test_a_committed_import_is_watched_before_its_rows_are_handed_over(
    db: Database, caplog
) -> None:
    """Committed is the pool's: a deposit to a row still `importing` must not be missed."""
    await load_pool(db, "evm", 2)
    book = AddressBook("evm", count_check_seconds=0)
    assert await book.refresh(db) == 2
    committed = [a[2:].lower() for a in await stage_import(db, 5, "committed")]
    assert await book.refresh(db) == 5
    assert set(committed) <= set(book.addresses)
    async with db.write() as conn:  # handed over: found again by id, nothing new
        await conn.execute(update(address).values(status="available"))
    assert await book.refresh(db) == 0
    assert "out of step" not in caplog.text and len(book) == 7


async def test_the_first_load_spans_pages_and_later_refreshes_add_to_it(
    db: Database, monkeypatch
) -> None:
    # The first load into an empty book is gathered over every page and sorted once.
    monkeypatch.setattr(address_book, "PAGE", 3)
    first = await load_pool(db, "evm", 10)
    book = AddressBook("evm")
    assert await book.refresh(db) == 10
    assert list(book.addresses) == sorted(a[2:].lower() for a in first)
    more = await load_pool(db, "evm", 4)
    assert await book.refresh(db) == 4
    assert all(a[2:].lower() in book for a in first + more) and len(book) == 14
