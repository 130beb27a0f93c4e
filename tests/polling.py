"""Wait for a condition, not for a guess: poll until it holds or a deadline passes.

A fixed sleep is either too short on a busy machine (a flaky test) or too long everywhere else
(a slow one); polling returns as soon as the condition holds and fails with a message when it
never does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = 30.0
INTERVAL = 0.02


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: str = "",
) -> T:
    """Call `predicate` until it returns something true, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout:g} s: {what or predicate!r}")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: str = "",
) -> T:
    """As `wait_until`, without blocking the event loop; `predicate` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout:g} s: {what or predicate!r}")
        await asyncio.sleep(interval)
