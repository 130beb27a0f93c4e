"""Taking turns at SQLite's one writer with other connections and processes.

Work that writes in many short transactions (an import, pool.addresses.staged_import) must leave
a gap after each in which the others' writes go through. Another process's writer that found the
database locked waits in SQLite's busy handler, which sleeps between tries — 1, 2, 5, 10, 15, 20,
25 ms …, and 100 ms once it has waited 228 ms — so a gap shorter than its next sleep is missed
and it waits a whole transaction more. And once in, a server writes its queued binds one
transaction after another: a fixed gap cut them off half-way.

`Turns.rest` after each transaction looks every LOOK_SECONDS whether another connection
committed (`PRAGMA data_version`, read on a connection of its own), and rests on only while
they commit back to back, so that a server's queue drains before the next transaction —
bounded, so that the work keeps at least `share` of the time. The first look comes after a gap:
- while the others are busy (one committed within OTHERS_QUIET_AFTER), a gap long enough for a
  waiter's next try (a third of the transaction it waited for, 25–120 ms), every LONG_EVERY-th
  at least LONG_GAP: a waiter that missed a short gap tries only every 100 ms, and with
  transactions and gaps that add up to 100 ms it would miss every one in phase (seen: a bind
  that waited out the 10 s busy timeout);
- while they are quiet (a server with no binds, or none at all), one look: nobody is queued
  behind the work, which goes on at once and is not slowed by a gap per transaction. A writer
  that arrives meanwhile gets in at a look if its try falls there, and at the latest at the
  LONG_GAP taken once every QUIET_LONG_EVERY; its commit makes the others busy again.
PostgreSQL writers do not queue on one lock: nothing to do there.
"""

from __future__ import annotations

import sqlite3
import time
from asyncio import sleep
from types import TracebackType

from pool.kit.db import Database

SHORTEST_GAP, LONGEST_GAP = 0.025, 0.12
GAP_SHARE = 0.3  # of the transaction just ended: how long a waiter of it may sleep between tries
LONG_EVERY, LONG_GAP = 4, 0.11  # longer than the busy handler's longest sleep (100 ms)
# A bind's transaction, fsync included, takes a few ms (tens on a loaded box), and a server's
# next one starts as soon as the last commits: a look that finds no new commit means the queue
# has drained (or a waiter is asleep in its busy handler: the gaps are for those).
LOOK_SECONDS = 0.01
# The others are busy for this long after a commit of theirs was seen: binds that arrive a few a
# second leave quiet spells between them that must not end the gaps they need.
OTHERS_QUIET_AFTER = 1.0
QUIET_LONG_EVERY = 1.0  # seconds: while the others are quiet, a LONG_GAP at most this far apart


class Turns:
    def __init__(self, db: Database, *, share: float = 0.5) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self.share = share
        self.rested = 0.0  # seconds, over its life: what taking turns added to the work
        self.rests = 0
        self.looks = 0  # over its life: how often a rest looked for the others' commits
        self.others_seen_at = float("-inf")  # monotonic: the others' latest commit seen
        self.long_gap_at = time.monotonic()  # monotonic: the latest rest of LONG_GAP or more
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

    def others_busy(self, now: float) -> bool:
        """Whether another connection committed lately (seen by a rest's looks)."""
        return now - self.others_seen_at < OTHERS_QUIET_AFTER

    def next_gap(self, worked: float) -> float:
        """The rest before the first look, after a transaction of `worked` seconds (counts the
        rests)."""
        self.rests += 1
        now = time.monotonic()
        gap = self._busy_gap(worked) if self.others_busy(now) else self._quiet_gap(now)
        if gap >= LONG_GAP:
            self.long_gap_at = now
        return gap

    def _busy_gap(self, worked: float) -> float:
        """Long enough for the next try of a waiter of that transaction."""
        gap = min(LONGEST_GAP, max(SHORTEST_GAP, worked * GAP_SHARE))
        return max(gap, LONG_GAP) if self.rests % LONG_EVERY == 0 else gap

    def _quiet_gap(self, now: float) -> float:
        """One look, and now and then long enough for any waiter's next try."""
        return LONG_GAP if now - self.long_gap_at >= QUIET_LONG_EVERY else LOOK_SECONDS

    async def rest(self, worked: float) -> None:
        """After a transaction that held the writer `worked` seconds."""
        probe = self._probe
        if probe is None:
            return
        started = time.monotonic()
        longest = worked * (1 - self.share) / self.share
        seen = _version(probe)  # our own commit moved it too: from here on, the others'
        await sleep(self.next_gap(worked))
        while (now := self._look(probe, seen)) != seen:
            seen = now
            if time.monotonic() - started >= longest:
                break  # the work's share of the time: its turn, whoever waits
            await sleep(LOOK_SECONDS)
        self.rested += time.monotonic() - started

    def _look(self, probe: sqlite3.Connection, seen: int) -> int:
        """The database's version now: another than `seen` (another connection committed since
        the last look) makes the others busy."""
        self.looks += 1
        version = _version(probe)
        if version != seen:
            self.others_seen_at = time.monotonic()
        return version


def _version(probe: sqlite3.Connection) -> int:
    """Moves whenever another connection commits (microseconds: the WAL index's header)."""
    return int(probe.execute("PRAGMA data_version").fetchone()[0])
