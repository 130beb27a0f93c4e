"""The one worker loop: a step, then a pause, until `stop` — and what to do when a step fails.

Every background worker (webhook delivery, alert rules and notifications, the upstream check,
the reconciler, the chain runner's lead-or-stand-by and poll loops) is this loop with its own step,
pause and failure message. A failing step is logged with its traceback and tried again after
the pause: the work it did not do is still in the database, so the next step picks it up. The
pause ends early when `stop` is set, so a worker stops within one step, not one pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from pool.kit.db_failures import log_failure

T = TypeVar("T")
MAX_DOUBLINGS = 32


async def run_every(
    stop: asyncio.Event,
    step: Callable[[], Awaitable[T]],
    *,
    pause: float | Callable[[T | None], float],
    log: logging.Logger,
    failure: str | None,
    context: Mapping[str, object] | None = None,
    wake: asyncio.Event | None = None,
    pause_first: bool = False,
) -> None:
    """Run `step` until `stop` is set, pausing between steps.

    pause: seconds to wait after each step, or a function of the step's result (None when
      the step failed) — 0 or less goes on to the next step after yielding to the event loop.
    failure: the message logged (with the traceback and `context`) when a step raises; the
      loop goes on after the pause. None: a step's exception ends the loop and reaches the
      caller, which decides (e.g. to give up a chain's leadership).
    wake: an event that ends a pause early; it is cleared before each step, so that whatever
      sets it while the step runs ends the pause that follows.
    pause_first: pause before the first step too (a timer that does not fire at start-up).
    """
    if pause_first and await _stopped_within(stop, _seconds(pause, None), wake):
        return
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        result = await _attempt(step, log=log, failure=failure, context=context)
        seconds = _seconds(pause, result)
        if seconds > 0:
            await _stopped_within(stop, seconds, wake)
        else:
            await asyncio.sleep(0)  # no pause still lets the rest of the process run


async def _attempt(
    step: Callable[[], Awaitable[T]],
    *,
    log: logging.Logger,
    failure: str | None,
    context: Mapping[str, object] | None,
) -> T | None:
    if failure is None:
        return await step()
    try:
        return await step()
    except Exception as exc:
        log_failure(log, failure, exc, context or {})
        return None


def _seconds(pause: float | Callable[[T | None], float], result: T | None) -> float:
    return pause(result) if callable(pause) else pause


async def _stopped_within(
    stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None
) -> bool:
    """Wait up to `seconds` for `stop` (or `wake`); whether `stop` is set."""
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        return stop.is_set()
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stop.is_set()


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once when `stop` is set; whether it is."""
    return await _stopped_within(stop, seconds)


class Backoff:
    """A pause for `run_every` that doubles after each failed step, up to `ceiling`.

    A step's result counts as failed when it is falsy (or the step raised); a success brings
    the pause back to `interval`. Doubling is safe for a watcher: a failed poll does not move
    the cursor, so nothing is skipped, only later.
    """

    def __init__(self, interval: float, *, ceiling: float) -> None:
        self._interval = interval
        self._ceiling = ceiling
        self.failures = 0

    def __call__(self, result: object) -> float:
        self.failures = 0 if result else self.failures + 1
        if not self.failures:
            return self._interval
        # The exponent is capped: after ~1,000 failures in a row 2**n no longer fits a float.
        doubled: float = self._interval * 2.0 ** min(self.failures, MAX_DOUBLINGS)
        return min(self._ceiling, doubled)
