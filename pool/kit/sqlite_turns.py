"""Taking turns at SQLite's one writer with other connections and processes.

Work that writes in many short transactions (an import, pool.addresses.staged_import) must leave
a gap after each in which the others' writes go through. Another process's writer that found the
database locked waits in SQLite's busy handler, which sleeps between tries — 1, 2, 5, 10, 15, 20,
25 ms …, and 100 ms once it has waited 228 ms — so a gap shorter than its next sleep is missed
and it waits a whole transaction more. And once in, a server writes its queued binds one
transaction each: a fixed gap cut them off half-way.

`Turns.rest` after each transaction: first a gap long enough for a waiter's next try (a third
of the transaction it waited for, 25–120 ms), then on for as long as others keep committing
(`PRAGMA data_version` moves, read on a connection of its own), so that a server's queue drains
before the next transaction — bounded, so that the work keeps at least `share` of the time.
Every LONG_EVERY-th gap is at least LONG_GAP: a waiter that missed a short gap tries only every
100 ms, and with transactions and gaps that add up to 100 ms it would miss every one in phase
(seen: a bind that waited out the 10 s busy timeout). PostgreSQL writers do not queue on one
lock: nothing to do there.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from types import TracebackType

from pool.kit.db import Database

SHORTEST_GAP, LONGEST_GAP = 0.025, 0.12
GAP_SHARE = 0.3  # of the transaction just ended: how long a waiter of it may sleep between tries
LONG_EVERY, LONG_GAP = 4, 0.11  # longer than the busy handler's longest sleep (100 ms)
# While the others commit: a bind's transaction, fsync included, takes a few ms (tens on a
# loaded box; one that misses the turn waits one more transaction).
POLL_SECONDS = 0.02


class Turns:
    def __init__(self, db: Database, *, share: float = 0.5) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self.share = share
        self.rested = 0.0  # seconds, over its life: what taking turns added to the work
        self.rests = 0
        name = db.url.database if db.is_sqlite else None
        self._probe = None
        if name and name != ":memory:":
            self._probe = sqlite3.connect(name, isolation_level=None, check_same_thread=False)

    def __enter__(self) -> Turns:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def next_gap(self, worked: float) -> float:
        """The shortest rest after a transaction of `worked` seconds (counts the rests)."""
        self.rests += 1
        gap = min(LONGEST_GAP, max(SHORTEST_GAP, worked * GAP_SHARE))
        return max(gap, LONG_GAP) if self.rests % LONG_EVERY == 0 else gap

    async def rest(self, worked: float) -> None:
        """After a transaction that held the writer `worked` seconds."""
        probe = self._probe
        if probe is None:
            return
        started = time.monotonic()
        gap = self.next_gap(worked)
        longest = max(gap, worked * (1 - self.share) / self.share)
        seen = _version(probe)  # our own commit moved it too: from here on, the others'
        await asyncio.sleep(gap)
        while time.monotonic() - started < longest:
            now = _version(probe)
            if now == seen:
                break  # nobody committed since the last look: our turn again
            seen = now
            await asyncio.sleep(POLL_SECONDS)
        self.rested += time.monotonic() - started


def _version(probe: sqlite3.Connection) -> int:
    """Moves whenever another connection commits (microseconds: the WAL index's header)."""
    return int(probe.execute("PRAGMA data_version").fetchone()[0])
