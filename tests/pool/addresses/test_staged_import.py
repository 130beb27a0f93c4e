"""A SQLite import in short transactions (pool.addresses.staged_import): nothing of it is the
pool's before it commits, all of it after; a failure leaves nothing; an interruption after
the commit is finished by the next holder of the import lock (pool.addresses.import_recovery).
Where both databases are named, PostgreSQL's one-transaction import keeps the same promises."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from chains.codec import address_parser
from chains.watch.address_book import AddressBook
from pool.addresses import import_repository, importer, imports, staged_import
from pool.addresses.import_formats import read_rows
from pool.addresses.import_recovery import recover_if_no_import_runs
from pool.addresses.importer import ImportReport, ImportSource, validate_rows
from pool.addresses.imports import CheckedRows
from pool.addresses.repository import claim_available_address, find_address_id, list_addresses
from pool.addresses.stats import summarize
from pool.alerts.monitoring_repository import any_address, usable_addresses
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.import_lock import holding_import_lock
from pool.kit.tables import address, audit_log, import_batch, master_key
from tests.fixtures.helpers import random_addresses

XPUB = "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwqPfgyP3hooxujYzAu3fDVmz"
OTHER_XPUB = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"


def _checked(text: str) -> CheckedRows:
    rows = read_rows(text)
    return CheckedRows(validate_rows(rows, protocol="evm", parser=address_parser("evm")), {})


async def _import(db: Database, text: str, **flags: Any) -> ImportReport:
    source = ImportSource("t.csv", "cli:test", "csv")
    return await imports.import_file(db, _checked(text), protocol="evm", source=source, **flags)


def _lines(addresses: list[str]) -> str:
    return "address\n" + "\n".join(addresses) + "\n"


def _with_keys(addresses: list[str], key: str) -> str:
    rows = "".join(f"{a},{n},evm,{key}\n" for n, a in enumerate(addresses))
    return "address,derivation_index,protocol,master_public_key\n" + rows


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 40 rows: a few hundred addresses are many chunks."""
    monkeypatch.setattr(staged_import, "LARGEST_CHUNK", 40)


async def _count(db: Database, table: Any, *where: Any) -> int:
    async with db.read() as conn:
        statement = select(func.count()).select_from(table).where(*where)
        return int(await conn.scalar(statement) or 0)


async def _what_the_pool_shows(db: Database, some_address: str) -> dict[str, Any]:
    """Everything that counts, lists, finds or claims an address."""
    now = utc_now()
    async with db.read() as conn:
        [evm, _] = await summarize(conn, now=now)
        listed, total = await list_addresses(
            conn, protocol=None, status=None, now=now, offset=0, limit=10
        )
        shown = {
            "summary": (evm.total, evm.available),
            "listed": (len(listed), total),
            "usable": await usable_addresses(conn, protocol="evm"),
            "any": await any_address(conn, protocol="evm"),
            "found": await find_address_id(conn, protocol="evm", text=some_address) is not None,
        }
    try:
        async with db.write() as conn:
            claimed = await claim_available_address(conn, protocol="evm", reference="r", now=now)
            shown["claimable"] = claimed is not None
            raise _Undo
    except _Undo:
        pass
    book = AddressBook("evm", count_check_seconds=0)
    shown["watched"] = await book.refresh(db)
    return shown


class _Undo(Exception):
    """Rolls a look back."""


NOTHING = {
    "summary": (0, 0),
    "listed": (0, 0),
    "usable": 0,
    "any": False,
    "found": False,
    "claimable": False,
    "watched": 0,
}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_nothing_is_the_pools_before_the_commit_and_everything_after(
    db: Database, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = random_addresses("evm", 300)
    seen: dict[str, Any] = {}
    commit = staged_import._commit

    async def look_first(*args: Any, **kwargs: Any) -> None:
        seen["before"] = await _what_the_pool_shows(db, addresses[-1])
        seen["stored"] = await _count(db, address, address.c.status == "importing")
        await commit(*args, **kwargs)

    monkeypatch.setattr(staged_import, "_commit", look_first)
    report = await _import(db, _lines(addresses))

    assert seen["before"] == NOTHING and seen["stored"] == 300  # written, not the pool's
    after = await _what_the_pool_shows(db, addresses[-1])
    assert after == {
        "summary": (300, 300),
        "listed": (10, 300),
        "usable": 300,
        "any": True,
        "found": True,
        "claimable": True,
        "watched": 300,
    }
    assert (report.imported, report.already_in_pool) == (300, 0)
    async with db.read() as conn:
        batch = (await conn.execute(select(import_batch))).one()
        order = (await conn.scalars(select(address.c.address).order_by(address.c.id))).all()
    assert (batch.status, batch.imported, batch.id) == ("done", 300, report.batch_id)
    assert list(order) == addresses  # handed out in the file's order, as before
    assert await _count(db, audit_log, audit_log.c.action == "address.import") == 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_reimport_and_a_large_import_behave_as_before(db: Database) -> None:
    """Duplicates skipped and counted; 1,000 addresses or more leave planner statistics."""
    addresses = random_addresses("evm", importer.ANALYZE_AFTER)
    first = await _import(db, _lines(addresses))
    again = await _import(db, _lines([*addresses[:10], *addresses[:3]]))
    assert (first.imported, again.imported, again.already_in_pool) == (1_000, 0, 10)
    assert again.duplicates_in_input == 3
    async with db.read() as conn:
        stat = await conn.exec_driver_sql(
            "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_address_claim_order_sqlite'"
        )
        assert str(stat.scalar()).split()[0] == "1000"


def _fail_on_call(number: int, real: Any) -> Any:
    calls = {"n": 0}

    async def insert(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == number:
            raise RuntimeError("disk on fire")  # a fault found late, during the write
        await real(*args, **kwargs)

    return insert


async def test_a_failure_during_the_write_leaves_nothing(
    db: Database, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing visible, and nothing stored: rows, batch, audit, and the master key the failed
    import recorded; a key an earlier import recorded stays."""
    kept = random_addresses("evm", 2)
    await _import(db, _with_keys(kept, XPUB))
    before = {table.name: await _count(db, table) for table in (address, import_batch, master_key)}
    # SQLite: the third of its chunks; PostgreSQL: its one transaction's insert, once staged.
    if db.is_sqlite:
        failing = _fail_on_call(3, importer.insert_new_addresses)
    else:
        failing = _fail_on_call(1, importer.insert_staged)
    monkeypatch.setattr(staged_import, "insert_new_addresses", failing)  # SQLite's chunks
    monkeypatch.setattr(importer, "insert_staged", failing)  # PostgreSQL's transaction
    doomed = random_addresses("evm", 200)
    text = _with_keys(doomed[:100], XPUB) + "".join(
        f"{a},1,evm,{OTHER_XPUB}\n" for a in doomed[100:]
    )

    with pytest.raises(RuntimeError, match="disk on fire"):
        await _import(db, text)

    after = {table.name: await _count(db, table) for table in (address, import_batch, master_key)}
    assert after == before == {"address": 2, "import_batch": 1, "master_key": 1}
    assert await _count(db, audit_log, audit_log.c.action == "address.import") == 1
    assert (await _what_the_pool_shows(db, doomed[0]))["found"] is False


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_cancelled_import_leaves_nothing(db: Database, small_chunks: None) -> None:
    """Ctrl-C in `addrpool import`, or a request cancelled in `serve`."""
    written = asyncio.Event()

    def progress(phase: str, done: int, _total: int) -> None:
        if phase == "written" and done >= 80:
            written.set()

    task = asyncio.create_task(_import(db, _lines(random_addresses("evm", 400)), progress=progress))
    await written.wait()
    assert await _count(db, address) > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await _count(db, address), await _count(db, import_batch)) == (0, 0)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_interrupted_hand_over_is_watched_at_once_and_finished_by_the_next_start(
    db: Database, small_chunks: None, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """Committed means the pool's: while its rows are still `importing` they are watched (a
    deposit to one is never lost), not claimable; the next start makes them available."""
    addresses = random_addresses("evm", 200)
    real = import_repository.hand_over_rows
    calls = {"n": 0}

    async def crash_on_the_third(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return await real(*args, **kwargs)

    monkeypatch.setattr(import_repository, "hand_over_rows", crash_on_the_third)
    caplog.set_level(logging.WARNING, logger="addrpool.import")
    report = await _import(db, _lines(addresses))

    assert report.imported == 200  # the import succeeded: it committed
    [warning] = [r for r in caplog.records if r.name == "addrpool.import"]
    assert warning.levelname == "WARNING" and warning.exc_info is None
    shown = await _what_the_pool_shows(db, addresses[0])
    assert shown["summary"] == (80, 80) and shown["claimable"]  # two chunks handed over
    assert shown["watched"] == 200  # the committed rows, all of them
    assert (await _what_the_pool_shows(db, addresses[-1]))["found"] is False  # not yet
    async with db.read() as conn:
        assert await conn.scalar(select(import_batch.c.status)) == "committed"

    async with db.read() as conn:
        batch = (await conn.execute(select(import_batch))).one()
    # Whatever its importer believes (a cancellation landing just after the commit), a
    # committed batch's rows are never removed.
    await staged_import.discard(db, batch_id=batch.id, protocol="evm", created_at=batch.created_at)
    assert await _count(db, address) == 200 and await _count(db, import_batch) == 1

    assert await recover_if_no_import_runs(db) == 1  # what `serve` runs at start
    assert await _count(db, address, address.c.status == "available") == 200
    async with db.read() as conn:
        assert await conn.scalar(select(import_batch.c.status)) == "done"
    assert await _count(db, audit_log, audit_log.c.action == "address.import") == 1
    assert await recover_if_no_import_runs(db) == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_abandoned_batch_is_removed_only_once_nobody_holds_the_lock(
    db: Database, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An importer that died before its commit, emulated: the batch and rows it wrote."""
    addresses = random_addresses("evm", 120)
    await _abandon(db, monkeypatch, _lines(addresses))
    assert await _count(db, address, address.c.status == "importing") == 120
    assert (await _what_the_pool_shows(db, addresses[0])) == NOTHING
    async with holding_import_lock(db):  # an import in flight: its batch is not abandoned
        assert await recover_if_no_import_runs(db) == 0
    assert await _count(db, address) == 120
    assert await recover_if_no_import_runs(db) == 1
    assert (await _count(db, address), await _count(db, import_batch)) == (0, 0)


async def _abandon(db: Database, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """Run an import up to its commit and leave it there, as a killed process would."""

    async def die(*_: Any, **__: Any) -> None:
        raise SystemExit("killed")

    async def no_cleanup(*_: Any, **__: Any) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(staged_import, "_commit", die)
        patch.setattr(staged_import, "discard_quietly", no_cleanup)
        with pytest.raises(SystemExit):
            await _import(db, text)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_next_import_removes_an_abandoned_one_first(
    db: Database, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = random_addresses("evm", 100)
    await _abandon(db, monkeypatch, _with_keys(dead, XPUB))
    assert await _count(db, master_key) == 1
    report = await _import(db, _lines(dead[:50]))  # the same addresses: free again
    assert (report.imported, report.already_in_pool) == (50, 0)
    assert (await _count(db, address), await _count(db, import_batch)) == (50, 1)
    assert await _count(db, master_key) == 0


async def test_overlapping_imports_at_once_each_add_an_address_once(db: Database) -> None:
    """SQLite: the second waits for the first (and says so); PostgreSQL: its transactions do."""
    shared = random_addresses("evm", 150)
    first = [*shared, *random_addresses("evm", 150)]
    second = [*random_addresses("evm", 100), *shared]
    waits: list[str] = []
    reports = await asyncio.gather(
        _import(db, _lines(first), on_wait=lambda: waits.append("first")),
        _import(db, _lines(second), on_wait=lambda: waits.append("second")),
    )
    assert sum(r.imported for r in reports) == 400 == await _count(db, address)
    assert sum(r.already_in_pool for r in reports) == 150
    assert len(waits) == (1 if db.is_sqlite else 0)
    assert await _count(db, address, address.c.status != "available") == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_busy_database_is_waited_for_with_a_warning_and_no_traceback(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """Another process (a server's binds) held the writer past SQLite's busy timeout."""
    real = db.run_write
    busy = {"left": 2}

    async def sometimes_busy(work: Any, **kwargs: Any) -> Any:
        if busy["left"]:
            busy["left"] -= 1
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("BEGIN IMMEDIATE", {}, locked)
        return await real(work, **kwargs)

    monkeypatch.setattr(db, "run_write", sometimes_busy)
    caplog.set_level(logging.INFO)
    report = await _import(db, _lines(random_addresses("evm", 20)))
    assert report.imported == 20
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"] * 2
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_dry_run_counts_the_pool_only_and_writes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pooled = random_addresses("evm", 5)
    await _import(db, _lines(pooled))
    pending = random_addresses("evm", 5)
    await _abandon(db, monkeypatch, _lines(pending))
    report = await _import(db, _lines([*pooled, *pending]), dry_run=True)
    assert (report.imported, report.already_in_pool, report.batch_id) == (5, 5, None)
    assert await _count(db, address) == 10


async def test_a_downgrade_keeps_committed_rows_and_drops_the_rest(db: Database) -> None:
    """Revision 0018's downgrade: `importing` means nothing to 0017."""
    from pool.kit.migrate import downgrade, upgrade

    kept, dropped = random_addresses("evm", 3), random_addresses("evm", 2)
    reports = [await _import(db, _lines(kept)), await _import(db, _lines(dropped))]
    for report, status in zip(reports, ("committed", "importing"), strict=True):
        async with db.write() as conn:  # as an interrupted import leaves them
            batch = import_batch.c.id == report.batch_id
            await conn.execute(update(import_batch).where(batch).values(status=status))
            await conn.execute(
                update(address)
                .where(address.c.import_batch_id == report.batch_id)
                .values(status="importing")
            )
    await downgrade(db, "0017")
    try:
        async with db.read() as conn:
            statuses = await conn.exec_driver_sql("SELECT status FROM address")
            assert sorted(s for (s,) in statuses.all()) == ["available"] * 3
            assert await conn.scalar(select(func.count()).select_from(import_batch)) == 1
    finally:
        await upgrade(db)


def test_chunks_follow_their_time_and_shrink_at_once_when_a_server_starts() -> None:
    sizer = staged_import.ChunkSizer(1_000, seconds=2.0)
    sizer.took(1_000, 0.5)  # four times too fast: halfway to four times the size
    assert sizer.size == 2_500
    sizer.aim(0.1)  # a server started: the next chunk is sized for it at once
    assert sizer.size == 200  # 125, but never below the smallest chunk
    sizer.aim(0.1)
    assert sizer.size == 200
    sizer = staged_import.ChunkSizer(10_000, seconds=0.1)
    sizer.took(10_000, 1.0)  # ten times too slow (a loaded machine): straight down
    assert sizer.size == 1_000
