"""Background work that yields the machine to the requests it shares it with.

A reconciliation run re-reads a thousand receipts and scans a week of deposits: a few hundred
milliseconds of CPU here, in the database and in the node. Flat out, on a small box that also
serves binds, those are cycles the binds lose. A `Pacer` rests between the run's steps so that
it keeps busy at most `duty_cycle` of the time: the run takes longer, the binds do not notice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

MAX_REST = 1.0  # seconds, at a time


class Pacer:
    """Work is measured on the wall clock, which also counts waiting on a remote node — no load
    on this box — so a single rest is capped at `max_rest`: with a node 200 ms away, twenty
    batches of chain reads would otherwise add 36 s of rest to a run."""

    def __init__(
        self,
        duty_cycle: float,
        *,
        max_rest: float = MAX_REST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < duty_cycle <= 1:
            raise ValueError(f"duty_cycle must be in (0, 1], not {duty_cycle}")
        self.duty_cycle = duty_cycle
        self.max_rest = max_rest
        self._clock = clock
        self._since = clock()
        self.rested = 0.0  # seconds, over the pacer's life: what pacing added to the run

    def rest_for(self) -> float:
        """How long to rest after the work done since the last rest."""
        worked = max(0.0, self._clock() - self._since)
        return min(self.max_rest, worked * (1 - self.duty_cycle) / self.duty_cycle)

    async def rest(self) -> None:
        """Call between steps: sleeps in proportion to the work since the last call."""
        pause = self.rest_for()
        if pause > 0:
            await asyncio.sleep(pause)
            self.rested += pause
        self._since = self._clock()


UNPACED = 1.0  # a duty cycle of 1: never rests
