"""Who writes a chain: one watcher at a time, elected by a lock and fenced by an epoch.

Election (PostgreSQL): a session advisory lock per chain, held on a connection of its own for as
long as the watcher leads. The other workers stand by, retrying every STANDBY_RETRY_SECONDS,
and one takes over when the holder's connection closes. SQLite allows one process: nothing to
elect there, and the epoch below is taken all the same.

Fencing (invariant 15, docs/design.md): a lock held on another connection cannot stop a writer that
has not yet noticed losing it — its lock connection killed by a network blip, an idle timeout, a
pooler, `pg_terminate_backend` — while a standby already leads. So taking the leadership raises the
chain's epoch (`chain_leader`) in a transaction of its own, and every transaction that writes the
chain's state starts by locking that row and checking that the epoch is still its own
(`Leadership.write`). With an old leader O of epoch e and a new leader N (READ COMMITTED):

- O's transaction locked the row first: N's increment waits until it ends, so O's range lands
  before epoch e + 1 exists, and N, reading the cursor after its increment, goes on from there.
- N's increment committed first: O's check reads e + 1; O rolls back and writes nothing more.
- N's increment is in flight: O's row lock waits for it, then reads the new row, e + 1: as above.
- O is frozen inside a transaction (SIGSTOP, a paused VM): it holds the row and N waits, until
  PostgreSQL ends O's session for sitting idle in a transaction (FROZEN_LEADER_TIMEOUT_MS).

Each transaction is ordered before or after every increment, and the leader after an increment
starts from what was committed before it: one writer at a time, the cursor never rewound.

The leader also checks every LOCK_CHECK_SECONDS that its lock connection still holds the lock,
and stops when it does not — usually before a standby, retrying less often, has taken over. The
epoch is what keeps it safe when it has not noticed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.chain_state import repository as chain_state
from pool.kit import locks
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import LeadershipLost
from pool.kit.loop import sleep_unless_stopped

log = logging.getLogger("addrpool.watcher")
STANDBY_RETRY_SECONDS = 5.0
LOCK_CHECK_SECONDS = 1.0
# A lock check without an answer by then counts as a lost lock: we cannot tell that we hold it.
LOCK_CHECK_TIMEOUT_SECONDS = 5.0
# A leader's transaction never waits for anything but the database (the node is read before it
# begins), so only a frozen process sits idle in one this long.
FROZEN_LEADER_TIMEOUT_MS = 30_000
# The server drops a lock connection whose client vanished after ~25 s, not the OS's two hours.
KEEPALIVE_IDLE_SECONDS = 10
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_COUNT = 3
# A lock session that says nothing for this long is ended by the server, freeing the lock: its
# process is frozen (SIGSTOP, a paused VM), since a leader checks its lock every
# LOCK_CHECK_SECONDS and a standby asks for it every STANDBY_RETRY_SECONDS. The kernel of a
# frozen process still answers keepalives; without this, its lock would be kept for good.
LOCK_IDLE_TIMEOUT_MS = 15_000


class Leadership:
    """This process's leadership of one chain: the epoch it took, and whether it still has it."""

    def __init__(self, chain_id: str, epoch: int) -> None:
        self.chain_id = chain_id
        self.epoch = epoch
        self.lost: str | None = None
        # Set when the process stops or the leadership is lost: the watcher stops on it.
        self.ended = asyncio.Event()

    @contextlib.asynccontextmanager
    async def write(self, db: Database) -> AsyncIterator[AsyncConnection]:
        """A transaction writing the chain's state: it commits only while this still leads."""
        async with db.write() as conn:
            await self.hold(conn)
            yield conn

    async def hold(self, conn: AsyncConnection) -> None:
        """The transaction's first statement: this epoch leads until the transaction ends."""
        if self.lost is None:
            epoch = await chain_state.lock_leadership(
                conn, chain_id=self.chain_id, idle_timeout_ms=FROZEN_LEADER_TIMEOUT_MS
            )
            if epoch != self.epoch:
                self.lose(f"epoch {epoch} leads the chain now")
        if self.lost is not None:
            raise LeadershipLost(
                f"{self.chain_id}: epoch {self.epoch} no longer leads: {self.lost}"
            )

    def lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
            log.error(
                "leadership lost: writing nothing more for this chain",
                extra={"chain": self.chain_id, "epoch": self.epoch, "reason": reason},
            )
        self.ended.set()

    def resign(self) -> None:
        """The lock is being released: nothing more may be written under this epoch."""
        self.lost = self.lost or "its lock was released"
        self.ended.set()


async def take_leadership(db: Database, chain_id: str) -> Leadership:
    """Lead the chain from now on: the caller was elected, or is alone (SQLite, a test)."""
    async with db.write() as conn:
        epoch = await chain_state.take_leadership(
            conn, chain_id=chain_id, holder=holder_name(), now=utc_now()
        )
    log.info("leading the chain", extra={"chain": chain_id, "epoch": epoch})
    return Leadership(chain_id, epoch)


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.asynccontextmanager
async def leading(
    db: Database, chain_id: str, stop: asyncio.Event
) -> AsyncIterator[Leadership | None]:
    """Stand by until elected, then lead the chain until `stop` or until the lock is found gone
    (both end `Leadership.ended`). None: stopped while standing by."""
    async with _chain_lock(db, chain_id, stop) as lock:
        if lock is None:
            yield None
            return
        leadership = await take_leadership(db, chain_id)
        keeper = asyncio.create_task(_keep(lock, leadership, stop))
        try:
            yield leadership
        finally:
            leadership.resign()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


def lock_key(chain_id: str) -> int:
    digest = hashlib.sha256(f"addrpool:watch:{chain_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class _HeldLock:
    conn: AsyncConnection | None  # None on SQLite: one process, no lock to hold
    key: int

    async def still_held(self) -> bool:
        if self.conn is None:
            return True
        try:
            return await asyncio.wait_for(
                locks.holds_lock(self.conn, self.key), LOCK_CHECK_TIMEOUT_SECONDS
            )
        except Exception as exc:  # a connection that fails holds nothing we can count on
            log.warning("the chain lock's connection failed", extra={"error": repr(exc)})
            await _discard(self.conn)
            return False


async def _keep(lock: _HeldLock, leadership: Leadership, stop: asyncio.Event) -> None:
    """End the leadership when the process stops, or when its lock is found gone."""
    while not stop.is_set():
        await sleep_unless_stopped(stop, LOCK_CHECK_SECONDS)
        if not stop.is_set() and not await lock.still_held():
            leadership.lose("its connection no longer holds the chain's lock")
            return
    leadership.ended.set()


@contextlib.asynccontextmanager
async def _chain_lock(
    db: Database, chain_id: str, stop: asyncio.Event
) -> AsyncIterator[_HeldLock | None]:
    """Yields the lock once this process is the chain's only watcher (None if stopped first)."""
    key = lock_key(chain_id)
    if db.is_sqlite:
        yield _HeldLock(None, key)
        return
    async with db.session() as conn:
        try:
            async with _elected(conn, key, chain_id, stop) as elected:
                yield _HeldLock(conn, key) if elected else None
        finally:
            # Closed, never handed back to the pool: its session ends itself after
            # LOCK_IDLE_TIMEOUT_MS idle, which would break whoever took it from the pool next.
            await _discard(conn)


@contextlib.asynccontextmanager
async def _elected(
    conn: AsyncConnection, key: int, chain_id: str, stop: asyncio.Event
) -> AsyncIterator[bool]:
    """Stand by on `conn` until it takes the chain's lock (True), or `stop` (False)."""
    await chain_state.probe_dead_client_after(
        conn,
        idle_seconds=KEEPALIVE_IDLE_SECONDS,
        interval_seconds=KEEPALIVE_INTERVAL_SECONDS,
        count=KEEPALIVE_COUNT,
    )
    await chain_state.end_session_when_idle(conn, idle_ms=LOCK_IDLE_TIMEOUT_MS)
    while not stop.is_set():
        if await locks.try_lock(conn, key):
            break
        log.info("standby: another worker watches this chain", extra={"chain": chain_id})
        await sleep_unless_stopped(stop, STANDBY_RETRY_SECONDS)
    else:
        yield False
        return
    try:
        yield True
    finally:
        await _release(conn, key)


async def _release(conn: AsyncConnection, key: int) -> None:
    """Unlock if the connection still works; a dead one released the lock when it closed."""
    if conn.invalidated:
        return
    try:
        await locks.unlock(conn, key)
    except Exception:
        await _discard(conn)


async def _discard(conn: AsyncConnection) -> None:
    """Never hand a failed connection back to the pool (its session may be gone)."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
