"""SQLite's write-ahead log copied back into the database file by a thread of its own.

By default the connection whose commit takes the WAL past 1,000 pages copies every frame into the
database file there and then, inside that commit: during a catch-up scan that was a large share of
the watcher's commit time and of each range (docs/performance.md). Here the writers' automatic
checkpoint only backs this thread up (at `SAFETY_NET_PAGES`, should it stall), and the thread runs a
PASSIVE checkpoint — it takes no lock a reader or writer waits on — every `INTERVAL` seconds, on
another core while the writer goes on.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("addrpool.db")
INTERVAL = 1.0  # seconds between checkpoints
SAFETY_NET_PAGES = 25_000  # ~100 MB of WAL: a writer checkpoints itself past this


class Checkpointer:
    def __init__(self, path: str, *, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # run so far (for tests and logs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                self._checkpoint(connection)
            self._checkpoint(connection)  # what the last commits wrote, before the pool closes
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except sqlite3.Error as exc:  # busy or locked: the next round, or the safety net
            log.debug("wal checkpoint skipped", extra={"error": str(exc)})
