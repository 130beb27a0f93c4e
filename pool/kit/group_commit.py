"""Group commit: SQLite writes that arrive while the writer is busy share its next trip.

With `synchronous=FULL` every commit waits for the disk, several milliseconds while other work
keeps it busy (docs/performance.md), so a transaction per bind can never go faster than one
commit at a time. Here the works that queued during one trip go together in the next: one
transaction, one COMMIT, one fsync for all of them, each in a savepoint of its own
(`pool.kit.sqlite_trip.run_batch`), so batches grow as the disk slows. Each caller gets its answer
only once its writes are committed, and its own error alone if its work failed (its writes
undone, the others' kept); a failure of the transaction itself is every caller's.

The batch is taken once the writer's lock is held, and the lock is taken per batch: the other
writers (the watcher, deliveries, alerts, which write through SQLAlchemy) queue on the same lock
and get it in turn, between batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pool.kit.sqlite_trip import Compiler, Outcome, Trip, run_batch

T = TypeVar("T")
# Works per trip at most. More would only lengthen the wait of the writers queued behind it;
# the benchmark's 32 concurrent binds never fill it.
MAX_BATCH = 64
Waiting = tuple[Callable[[Trip], Any], "asyncio.Future[Any]"]


class GroupCommit:
    """The SQLite writer's queue of works; `run` one, get its value once it is committed."""

    def __init__(
        self,
        lock: Callable[[], asyncio.Lock],
        driver: Callable[[], Awaitable[Any]],
        compiler: Compiler,
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._lock = lock
        self._driver = driver  # the writer's aiosqlite connection
        self._compiler = compiler
        self._max_batch = max_batch
        self._waiting: list[Waiting] = []
        self._drainer: asyncio.Future[None] | None = None

    async def run(self, work: Callable[[Trip], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())
        return await future

    async def idle(self) -> None:
        """Returns once every work handed in so far has been committed or failed."""
        while self._drainer is not None:
            await asyncio.wait([self._drainer])

    async def _drain(self) -> None:
        try:
            while self._waiting:
                async with self._lock():
                    batch = [(w, f) for w, f in self._waiting[: self._max_batch] if not f.done()]
                    del self._waiting[: self._max_batch]
                    if batch:
                        await self._run(batch)
        finally:
            self._drainer = None
            for _, future in self._waiting:  # only if cancelled: the event loop is closing
                _settle(future, Outcome(error=RuntimeError("the SQLite writer has stopped")))
            self._waiting.clear()

    async def _run(self, batch: list[Waiting]) -> None:
        trip = asyncio.ensure_future(self._trip([work for work, _ in batch]))
        try:
            # asyncio.wait neither raises the trip's error (each caller gets it, below) nor,
            # if this task is cancelled, cancels the trip.
            await asyncio.wait([trip])
        except asyncio.CancelledError:
            await asyncio.wait([trip])  # the transaction ends before the lock is let go
            raise
        finally:
            for (_, future), outcome in zip(batch, _outcomes(trip, len(batch)), strict=True):
                _settle(future, outcome)

    async def _trip(self, works: list[Callable[[Trip], Any]]) -> list[Outcome]:
        driver = await self._driver()
        # aiosqlite's own methods queue their calls so; it has no public one for ours.
        outcomes: list[Outcome] = await driver._execute(
            run_batch, driver._conn, self._compiler, works
        )
        return outcomes


def _outcomes(trip: asyncio.Future[list[Outcome]], count: int) -> list[Outcome]:
    """Each work's outcome; the trip's own failure is every work's."""
    if not trip.done() or trip.cancelled():
        return [Outcome(error=RuntimeError("the SQLite writer has stopped"))] * count
    error = trip.exception()
    return [Outcome(error=error)] * count if error is not None else trip.result()


def _settle(future: asyncio.Future[Any], outcome: Outcome) -> None:
    if future.done():  # its caller was cancelled
        return
    if outcome.error is not None:
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome.value)
