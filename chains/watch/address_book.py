"""Every pool address of a protocol, in memory, for matching Transfer recipients.

Lower-case 40-hex strings, held as 20-byte keys in a compact sorted set
(chains.watch.address_set: ~20 bytes an address where strings in a dict took ~130, and nothing
in it for the garbage collector to walk), matched a whole range's recipients at a time. The
first load, into an empty book, is gathered whole and sorted once (address_set.BulkLoad); then
it grows by id as addresses are imported; it is never reloaded whole per cycle. Ids are handed
out before commit, so on PostgreSQL a concurrent import can commit an id below one we have
already passed: a periodic count check catches that and triggers one full reload, so no address
is missed.

A SQLite import writes its rows as `importing` before it commits (pool.addresses.staged_import).
Those of an import in flight are not the pool's and are not watched: it may yet fail and take
them away, and a deposit sent to one before the import commits is like one sent before the
import (a rescan finds it). Once the import has committed its rows are the pool's, and watched
from the next refresh, though they only become `available` a chunk at a time: a deposit to one
of them meanwhile is recorded (unattributed, as to any never-bound address), never lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from chains.watch.address_set import AddressSet, BulkLoad
from pool.addresses.import_repository import (
    committed_batches,
    count_uncommitted,
    importing_rows_after,
)
from pool.addresses.repository import copy_watch_list, count_protocol, watch_list_after
from pool.kit.db import Database
from pool.vocabulary import Protocol

log = logging.getLogger("addrpool.watcher")
PAGE = 50_000


class AddressBook:
    def __init__(self, protocol: Protocol, *, count_check_seconds: float = 10.0) -> None:
        self.protocol: Protocol = protocol
        self.addresses = AddressSet()
        self._last_id = 0
        self._committed_batches: set[int] = set()  # loaded while their rows were handed over
        self._count_check_seconds = count_check_seconds
        self._checked_at = 0.0

    def __contains__(self, hex20: object) -> bool:
        return hex20 in self.addresses

    def __len__(self) -> int:
        return len(self.addresses)

    def matching(self, hex20s: Iterable[str]) -> set[str]:
        """Those of `hex20s` (a range's recipients) that are pool addresses."""
        return self.addresses.matching(hex20s)

    async def refresh(self, db: Database) -> int:
        """Load addresses imported since the last refresh; returns how many were added."""
        added = await self._load_after(db, self._last_id)
        added += await self._load_committed(db)
        if time.monotonic() - self._checked_at >= self._count_check_seconds:
            added += await self._check_count(db)
        return added

    async def _load_after(self, db: Database, after_id: int) -> int:
        # The first load of an empty book is gathered whole and sorted once (BulkLoad): added
        # one page at a time, ten million took minutes of merges before the worker could watch.
        bulk = BulkLoad() if not len(self.addresses) else None
        added = 0
        async with db.read() as conn:
            if bulk is not None and conn.dialect.name == "postgresql":
                return await self._copy_first(conn, bulk)
            while True:
                page = await watch_list_after(
                    conn, protocol=self.protocol, after_id=after_id, limit=PAGE
                )
                if bulk is not None:
                    bulk.add(hex20 for _, hex20 in page)
                else:
                    added += self.addresses.update(hex20 for _, hex20 in page)
                if page:  # in id order
                    after_id = page[-1][0]
                if len(page) < PAGE:
                    break
        if bulk is not None:
            added = self.addresses.load(bulk)
        self._last_id = max(self._last_id, after_id)
        return added

    async def _copy_first(self, conn: AsyncConnection, bulk: BulkLoad) -> int:
        """PostgreSQL's first load: the hex20s as COPY text, gathered straight from its bytes.
        Read as rows in pages, ten million took over a minute and a half of a worker's start
        (docs/performance.md), most of it making a Python row of each."""

        async def gather(chunk: bytes) -> None:
            bulk.add_lines(chunk)

        last_id = await copy_watch_list(conn, protocol=self.protocol, output=gather)
        bulk.finish_lines()
        self._last_id = max(self._last_id, last_id)
        return self.addresses.load(bulk)

    async def _load_committed(self, db: Database) -> int:
        """The rows of committed imports not handed over yet (`watch_list_after` leaves them
        out until they are available), each batch once."""
        added = 0
        async with db.read() as conn:
            for batch_id in await committed_batches(conn, protocol=self.protocol):
                if batch_id in self._committed_batches:
                    continue
                after_id = 0
                while True:
                    page = await importing_rows_after(
                        conn, batch_id=batch_id, after_id=after_id, limit=PAGE
                    )
                    added += self.addresses.update(hex20 for _, hex20 in page)
                    if page:
                        after_id = page[-1][0]
                    if len(page) < PAGE:
                        break
                self._committed_batches.add(batch_id)
        return added

    async def _check_count(self, db: Database) -> int:
        self._checked_at = time.monotonic()
        async with db.read() as conn:
            # What the book should hold: every row but those of imports not committed yet.
            total = await count_protocol(conn, protocol=self.protocol)
            total -= await count_uncommitted(conn, protocol=self.protocol)
        if total == len(self.addresses):
            return 0
        log.warning(
            "address book out of step with the database; reloading",
            extra={"protocol": self.protocol, "in_memory": len(self.addresses), "stored": total},
        )
        return await self._load_after(db, 0)
