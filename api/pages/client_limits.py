"""How often one client address may do something on the public pages (create an order through
a checkout, try to sign in to the console): a token bucket per address, in this process's memory
(docs/configuration.md, `[checkout]` and `[console]`).

With several API processes each counts what it serves (as the API keys' limits do). The cap of
pending orders per link, kept in the database, is what bounds the pool whatever the processes
or addresses: this limit keeps one client from taking a link's whole cap by itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

# Buckets kept at most; past it the full ones go, and if none is full all go (a moment's
# leniency rather than unbounded memory under a flood of addresses).
MAX_CLIENTS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class ClientLimiter:
    def __init__(
        self, *, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = float(burst)
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> int:
        """0 when `client` may create an order now (one token spent), else the seconds until
        it may."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[client] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._per_second)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self._per_second))

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < MAX_CLIENTS:
            return
        full = [
            client
            for client, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.at) * self._per_second >= self._burst
        ]
        for client in full or list(self._buckets):
            del self._buckets[client]


def limiter_of(request: Request, name: str, *, per_minute: int, burst: int) -> ClientLimiter:
    """The application's limiter called `name`, made at its first use (kept on `app.state`)."""
    attribute = f"client_limiter_{name}"
    limiter: ClientLimiter | None = getattr(request.app.state, attribute, None)
    if limiter is None:
        limiter = ClientLimiter(per_minute=per_minute, burst=burst)
        setattr(request.app.state, attribute, limiter)
    return limiter
