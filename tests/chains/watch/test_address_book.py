import gc

from sqlalchemy import insert

from chains.watch.address_book import AddressBook
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address
from tests.fixtures.helpers import load_pool, random_evm_address


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
    assert {a[2:].lower() for a in evm} == set(book.hex20s)
    more = await load_pool(db, "evm", 2)
    assert await book.refresh(db) == 2
    assert more[0][2:].lower() in book
    assert await book.refresh(db) == 0
    # A container the GC tracks costs a pause per full collection that grows with the pool.
    assert not gc.is_tracked(book.hex20s)


async def test_an_import_committed_out_of_id_order_is_still_found(db: Database) -> None:
    """On PostgreSQL an id is taken before commit: a lower id can appear after a higher one."""
    book = AddressBook("evm", count_check_seconds=0)
    await _insert_with_id(db, 1000)
    await book.refresh(db)
    straggler = await _insert_with_id(db, 500)  # below the id the book has already passed
    assert await book.refresh(db) == 1
    assert straggler in book
    assert len(book) == 2
