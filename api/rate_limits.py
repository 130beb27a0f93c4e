"""Rate limits per API key and scope: a burst window (one second) and a sustained one (a minute).

Fixed windows counted in this process's memory: a bind pays a dict look-up and two additions,
no database. With several API processes each counts only what it serves, so a key's effective
limit is the process count times the configured one (docs/operations.md shows a global limit at
the proxy). Refused requests are not counted: a client that waits `Retry-After` gets through.

`require` (api.auth) calls `RateLimiter.spend` once the key is known and leaves the decision
in the request's scope; `RateLimitHeaders` writes it on the way out, so every answer to a
keyed request carries the headers, errors included (docs/api.md, Rate limits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pool.kit.config import RateLimitSettings
from pool.kit.errors import RateLimited

SECOND, MINUTE = 1.0, 60.0
# Counters kept at most; past it the expired ones go, and if none has expired all go (a
# moment's leniency rather than unbounded memory: only keys that authenticated get here).
MAX_COUNTERS = 10_000
DECISION = "addrpool.rate_limit"  # where the decision waits in the ASGI scope


@dataclass(slots=True, frozen=True)
class Decision:
    """What the headers say: the window closest to its limit, or the one that refused."""

    scope: str
    window: str  # "second" or "minute"
    limit: int
    remaining: int
    reset_seconds: int  # until that window starts afresh, rounded up
    allowed: bool = True

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.reset_seconds).encode()))
        return headers

    def refusal(self) -> RateLimited:
        return RateLimited(
            f"Rate limit exceeded: {self.limit} {self.scope} requests per {self.window} for "
            f"this API key; retry in {self.reset_seconds} s"
        )


@dataclass(slots=True)
class _Counter:
    second: int  # the window's number: floor(now / its length)
    in_second: int
    minute: int
    in_minute: int


class RateLimiter:
    def __init__(
        self, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._limits: dict[str, tuple[int, int]] = {}
        self._counters: dict[tuple[int, str], _Counter] = {}

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    def spend(self, key_id: int, scope: str) -> Decision:
        """Count one request of `key_id` on a route requiring `scope`, unless a window is full."""
        per_second, per_minute = self._limits_for(scope)
        now = self._clock()
        second, minute = math.floor(now), math.floor(now / MINUTE)
        counter = self._counter(key_id, scope, second, minute)
        if counter.second != second:
            counter.second, counter.in_second = second, 0
        if counter.minute != minute:
            counter.minute, counter.in_minute = minute, 0
        second_reset = _ceil_seconds(second + SECOND - now)
        minute_reset = _ceil_seconds((minute + 1) * MINUTE - now)
        if counter.in_minute >= per_minute:
            return Decision(scope, "minute", per_minute, 0, minute_reset, allowed=False)
        if counter.in_second >= per_second:
            return Decision(scope, "second", per_second, 0, second_reset, allowed=False)
        counter.in_second += 1
        counter.in_minute += 1
        left_second = per_second - counter.in_second
        left_minute = per_minute - counter.in_minute
        if left_minute <= left_second:
            return Decision(scope, "minute", per_minute, left_minute, minute_reset)
        return Decision(scope, "second", per_second, left_second, second_reset)

    def _limits_for(self, scope: str) -> tuple[int, int]:
        limits = self._limits.get(scope)
        if limits is None:
            limits = self._limits[scope] = self._settings.for_scope(scope)
        return limits

    def _counter(self, key_id: int, scope: str, second: int, minute: int) -> _Counter:
        counter = self._counters.get((key_id, scope))
        if counter is None:
            if len(self._counters) >= MAX_COUNTERS:
                self._forget_expired(minute)
            counter = self._counters[(key_id, scope)] = _Counter(second, 0, minute, 0)
        return counter

    def _forget_expired(self, minute: int) -> None:
        live = {k: c for k, c in self._counters.items() if c.minute == minute}
        self._counters = live if len(live) < MAX_COUNTERS else {}


def _ceil_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class RateLimitHeaders:
    """Adds the decision `require` left in the scope to the answer, whatever it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = scope.get(DECISION)
                if decision is not None:
                    message["headers"] = [*message.get("headers", ()), *decision.headers()]
            await send(message)

        await self.app(scope, receive, send_with_headers)
