"""Finished webhook attempts, written in batches (group commit).

Every attempt that ends while a write is in progress joins the next one: under load a single
transaction records dozens of attempts with three statements, where one transaction per
attempt cost more than the request itself. Each sender still waits until its own attempt is
written, so "recorded" keeps meaning committed. A batch that fails is retried one attempt per
transaction, so one bad row cannot sink the others; an attempt that cannot be written at all
is left to its lease (the delivery is claimed again: at least once). On PostgreSQL a batch
whose attempts have no consequences (no deposit to complete, no alert) is one statement, sent
without BEGIN and COMMIT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.db import Database
from pool.webhooks import deliveries_repository as repo

AfterWritten = Callable[[AsyncConnection, list[repo.Finished]], Awaitable[None]]
HasConsequences = Callable[[repo.Finished], bool]
Waiting = tuple[repo.Finished, "asyncio.Future[bool]"]


class AttemptRecorder:
    def __init__(
        self,
        db: Database,
        after_written: AfterWritten,
        *,
        has_consequences: HasConsequences = lambda _: True,
    ) -> None:
        self.db = db
        self._after_written = after_written  # in the same transaction (deposits, alerts)
        self._has_consequences = has_consequences  # False: after_written would do nothing
        self._queue: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, finished: repo.Finished) -> bool:
        """Write it (with whatever else finished meanwhile); False if its delivery was no longer
        pending (cancelled), in which case nothing was written for it."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((finished, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_queued())
        return await future

    async def _write_queued(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._write_batch(batch)
        finally:
            self._writer = None

    async def _write_batch(self, batch: list[Waiting]) -> None:
        try:
            written = await self._write([finished for finished, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for one in batch:  # find the one that fails; write the others
                await self._write_batch([one])
            return
        ids = {finished.claimed.delivery_id for finished in written}
        for finished, future in batch:
            _settle(future, finished.claimed.delivery_id in ids)

    async def _write(self, finished: list[repo.Finished]) -> list[repo.Finished]:
        if not self.db.is_sqlite and not any(map(self._has_consequences, finished)):
            async with self.db.autocommit() as conn:
                return await repo.record_attempts(conn, finished)
        async with self.db.write() as conn:
            written = await repo.record_attempts(conn, finished)
            await self._after_written(conn, written)
        return written


def _settle(future: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if future.done():  # its sender was cancelled (the worker is stopping)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
