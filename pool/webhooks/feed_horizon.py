"""How far the event feed may read on PostgreSQL without ever skipping an event.

The feed hands out events in `seq` order and a cursor that says "everything up to here". On
PostgreSQL `seq` comes from a sequence, handed out when a transaction inserts its event, but
transactions commit in any order: one that took seq 10 may commit after one that took seq 11.
A reader that saw 11 and moved its cursor past it would never see 10. (SQLite has one writer at
a time, so there a seq that is visible has every smaller one committed before it.)

So the feed reads only up to a *settled* horizon: a seq below which every event has committed
or never will. It is found without a column or a lock of its own:

1. Read the sequence's last value `L` (every seq up to `L` has been handed out), *then* list
   the transactions holding the lock an INSERT into `event` takes (RowExclusiveLock, taken
   before the INSERT computes its seq, held until the transaction ends): the set `W`. A
   transaction that holds a seq up to `L` and has not finished is in `W`, since it took the lock
   before its seq, and its seq before `L` was read.
2. Once none of `W` holds that lock any more (a later look at the lock table), each of them has
   committed — its events visible to any statement that starts afterwards — or rolled back, so
   every seq up to `L` is settled. With nobody in `W`, `L` is settled at once.

Under a steady stream of writes `W` is rarely empty, but each of its transactions lasts
milliseconds, so the horizon trails the newest commit by about one transaction. A transaction
that stays open (a long import, an idle session holding the lock) holds the horizon back until
it ends: events wait, none is lost. Nothing here blocks a writer. (An `xmin`-based horizon,
`pg_snapshot_xmin`, misses a transaction that took its seq before it was given a transaction id;
a virtual transaction id exists from the start.)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pool.kit.db import Database
from pool.webhooks.feed_repository import event_writers, last_issued_seq

# While the newest look is unsettled, how often to look at the lock table again, and for how
# long a read waits for it (a transaction lasts milliseconds; a reader gets what is settled).
SETTLE_PAUSE_SECONDS = 0.02
# Unsettled looks kept: dropping one only delays the horizon (a later look covers its seqs).
MAX_PENDING = 32


@dataclass(frozen=True, slots=True)
class Horizon:
    settled: int  # every event with seq <= settled has committed or never will
    issued: int  # the sequence's last value: no event has a seq above it


@dataclass(frozen=True, slots=True)
class _Look:
    number: int  # looks are numbered in the order they finished
    issued: int
    writers: frozenset[str]


class SettledHorizon:
    """One per database and process; safe to share between the requests of an event loop."""

    def __init__(self) -> None:
        self._settled = 0
        self._pending: list[_Look] = []
        self._looks = 0

    async def advance(self, db: Database, *, patience: float = 0.0) -> Horizon:
        """Look now; wait up to `patience` seconds for this look's writers to finish."""
        issued = await self._look(db)
        deadline = time.monotonic() + patience
        while self._settled < issued and self._pending and time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_PAUSE_SECONDS)
            await self._recheck(db)
        return Horizon(settled=min(self._settled, issued), issued=issued)

    async def _look(self, db: Database) -> int:
        before = self._looks
        async with db.read() as conn:
            issued = await last_issued_seq(conn)  # first: see the module's step 1
            writers = await event_writers(conn)
        self._settle(writers, looked_before=before)
        self._looks += 1
        if not writers:
            self._settled = max(self._settled, issued)
        else:
            self._remember(_Look(self._looks, issued, writers))
        return issued

    async def _recheck(self, db: Database) -> None:
        before = self._looks
        async with db.read() as conn:
            writers = await event_writers(conn)
        self._settle(writers, looked_before=before)

    def _settle(self, writers: frozenset[str], *, looked_before: int) -> None:
        """Settle the looks whose writers are all gone from `writers`, a lock table read that
        started after those looks finished (numbered up to `looked_before`): a look finished
        while it was read may name writers that had not started when it began."""
        still: list[_Look] = []
        for look in self._pending:
            if look.number <= looked_before and not look.writers & writers:
                self._settled = max(self._settled, look.issued)
            else:
                still.append(look)
        self._pending = still

    def _remember(self, look: _Look) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._pending[-1] = look  # keep the oldest (first to settle) and the newest
        else:
            self._pending.append(look)
