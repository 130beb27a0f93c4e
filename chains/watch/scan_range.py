"""A block range of a scan, as read from the node and not yet written (see chains.watch.watcher)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from chains.evm.erc20 import BlockHeader, TransferLog
from chains.evm.native import NativeTransfer


@dataclass(frozen=True, slots=True)
class Range:
    start: int
    end: int
    head: int


@dataclass(frozen=True, slots=True)
class Fetched:
    """A range as read from the node, not yet checked against our tip nor written."""

    span: Range
    logs: int  # token logs read
    found: list[TransferLog | NativeTransfer]  # of which to pool addresses, and the coin's
    headers: dict[int, BlockHeader]


@dataclass(frozen=True, slots=True)
class ReadAhead:
    span: Range
    task: asyncio.Task[Fetched]

    async def discard(self) -> None:
        """Drop a read that will not be used (a reorg, a stop, an error while writing).

        Its result or its error belongs to a range the next poll reads again anyway.
        """
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
