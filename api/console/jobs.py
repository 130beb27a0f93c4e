"""The work a console action starts and the answer does not wait for (a file import): kept
referenced while it runs, and cancelled at shutdown, each recording that it stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class ConsoleJobs:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._running.add(task)  # the event loop keeps only a weak reference to a task
        task.add_done_callback(self._running.discard)

    async def close(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
