"""API keys on every request: `Authorization: Bearer …` or `X-API-Key`, with scopes.

Verified keys are cached per process for `auth_cache_seconds` (default 5 s) so a bind does
not pay a key look-up; a revoked key therefore stops working within that time. A key of the
other network (`pk_live_` on testnet, `pk_test_` on mainnet) is refused before the cache and
the database are consulted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request

from api.context import AppContext
from api.rate_limits import DECISION, RateLimiter
from pool.keys import service as keys
from pool.keys.repository import ApiKey
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import Forbidden, Unauthorized
from pool.vocabulary import Network

MAX_CACHED_KEYS = 10_000
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hot row: update it at most this often


class KeyCache:
    def __init__(self, db: Database, *, network: Network, ttl_seconds: float) -> None:
        self._db = db
        self._network = network
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self._lookups: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def verify(self, presented: str) -> ApiKey | None:
        keys.refuse_other_network(presented, network=self._network)
        digest = keys.hash_key(presented)
        cached = self._entries.get(digest)
        if cached is not None and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        # One look-up of a key at a time: the requests that arrive while it runs share it
        # rather than each reading (and touching) the key; under load a whole client's worth
        # of requests would otherwise miss together every time the entry expires.
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(presented, digest))
            self._lookups[digest] = lookup
            lookup.add_done_callback(self._look_up_done(digest))
        # Shielded: one waiter's cancellation (its client went away) does not end the look-up
        # the others wait for.
        return await asyncio.shield(lookup)

    def _look_up_done(self, digest: str) -> Callable[[asyncio.Future[ApiKey | None]], None]:
        def done(lookup: asyncio.Future[ApiKey | None]) -> None:
            if self._lookups.get(digest) is lookup:
                del self._lookups[digest]
            if not lookup.cancelled():
                lookup.exception()  # retrieved: its waiters raise it, or all of them left

        return done

    async def _look_up(self, presented: str, digest: str) -> ApiKey | None:
        async with self._db.read() as conn:
            key = await keys.authenticate(conn, presented=presented, network=self._network)
        if key is None:
            self._entries.pop(digest, None)
            return None
        await self._touch(key)
        if len(self._entries) >= MAX_CACHED_KEYS:
            self._entries.clear()
        self._entries[digest] = (key, time.monotonic())
        return key

    def forget_all(self) -> None:
        self._entries.clear()

    async def _touch(self, key: ApiKey) -> None:
        now = utc_now()
        if key.last_used_at is not None and now - key.last_used_at < TOUCH_EVERY:
            return
        async with self._db.write() as conn:
            await keys.touch(conn, key_id=key.id, now=now)


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key else None


def missing_key(request: Request) -> Unauthorized:
    """No key presented: say so, and how to send one ("Invalid API key" sends people looking
    for a typo in a key they never sent)."""
    if request.headers.get("authorization"):
        return Unauthorized("Missing API key: the Authorization header must be 'Bearer <key>'")
    return Unauthorized("Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


def lacks_scope(scope: str) -> Forbidden:
    """Which scope, and how an operator makes a key that has it."""
    return Forbidden(
        f"This API key lacks the {scope} scope; an operator can create a key with it: "
        f"addrpool keys create --name NAME --scopes {scope}"
    )


def require(scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency: the caller's key, which must carry `scope` (or `admin`)."""

    async def dependency(request: Request) -> ApiKey:
        presented = presented_key(request)
        if not presented:
            raise missing_key(request)
        cache: KeyCache = request.app.state.key_cache
        key = await cache.verify(presented)
        if key is None:
            raise Unauthorized("Invalid API key")
        # For the access log line: the key's stored id, never the key (api.access_log).
        request.state.key_id = key.id
        limiter: RateLimiter = request.app.state.rate_limiter
        if limiter.enabled:
            decision = limiter.spend(key.id, scope)
            request.scope[DECISION] = decision  # RateLimitHeaders writes it on the answer
            if not decision.allowed:
                raise decision.refusal()
        if not key.allows(scope):
            raise lacks_scope(scope)
        return key

    return dependency


@dataclass(slots=True, frozen=True)
class Caller:
    """The app's context and the caller's key, from one dependency: each dependency FastAPI
    solves costs a request several microseconds (docs/performance.md, Bind), so the bind takes
    both from this one instead of `context` and `require`."""

    ctx: AppContext
    key: ApiKey


def require_caller(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    """`require(scope)`, its checks and errors unchanged, with the app's context beside the key."""
    key_with_scope = require(scope)

    async def dependency(request: Request) -> Caller:
        return Caller(request.app.state.ctx, await key_with_scope(request))

    return dependency
