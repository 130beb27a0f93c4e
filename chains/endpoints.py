"""Several RPC endpoints per chain: pick a healthy one per poll, set failing ones aside.

An endpoint is set aside when it errors, times out, throttles (HTTP 429, or an HTTP 200 with a
JSON-RPC error — the client reports both), answers suspiciously (no logs where there must be
some), or lags behind the best head by more than `max_lag` blocks. A set-aside endpoint is
probed again after a back-off that doubles with each consecutive failure. One poll uses one
endpoint from start to end, so the logs of a range and the headers that check them agree.

The watcher polls through a pool; every command that reads a chain outside it (`addrpool
rescan`, reconciliation, upstream checks) asks `EndpointPool.for_chain(chain).serve(work)`, the
same failover for a unit of work, and gets one `ChainUnavailable` naming every endpoint's
trouble when none could serve.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from chains.presets import ChainConfig
from chains.rpc import RpcClient, RpcError
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.errors import ChainUnavailable

log = logging.getLogger("addrpool.rpc")
DEFAULT_MAX_LAG = 5
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
# How often, at most, endpoint health is written only because heads moved (HealthNotes).
HEALTH_NOTE_SECONDS = 5.0
T = TypeVar("T")


class AllEndpointsDown(RpcError):
    """No endpoint of the chain can serve right now."""


@dataclass(slots=True)
class Endpoint:
    client: RpcClient
    failures: int = 0
    set_aside_until: float = 0.0
    reason: str | None = None
    head: int | None = None
    served: int = field(default=0)
    # What this endpoint cannot do for the chain (internal transfers without a trace API).
    note: str | None = None
    # How internal transfers of the chain's coin are read from it (chains.watch.tracers).
    tracer: str | None = None

    @property
    def name(self) -> str:
        return self.client.endpoint

    def view(self, now: float, wall_now: datetime) -> dict[str, Any]:
        waiting = self.set_aside_until - now
        usable = waiting <= 0
        noted = {"note": self.note} if self.note else {}
        traced = {"tracer": self.tracer} if self.tracer else {}
        return {
            **noted,
            **traced,
            "endpoint": self.name,
            "state": "ok" if usable and self.reason is None else "set_aside",
            "reason": self.reason,
            "head": self.head,
            "failures": self.failures,
            "retryInSeconds": None if usable else round(waiting, 1),
            # What is stored: readers count `retryInSeconds` down from it without a write.
            "retryAt": None if usable else isoformat_z(wall_now + timedelta(seconds=waiting)),
        }


class EndpointPool:
    def __init__(
        self,
        clients: Sequence[RpcClient],
        *,
        max_lag: int = DEFAULT_MAX_LAG,
        clock: Callable[[], float] = time.monotonic,
        chain_id: str = "",
    ) -> None:
        if not clients:
            raise ValueError("a chain needs at least one RPC endpoint")
        self.endpoints = [Endpoint(client) for client in clients]
        self.max_lag = max_lag
        self.chain_id = chain_id
        self._clock = clock

    @classmethod
    def for_chain(cls, chain: ChainConfig) -> EndpointPool:
        """A client per configured RPC URL, in order; close it (`async with`) when done."""
        clients = [RpcClient(url, timeout=chain.rpc_timeout) for url in chain.rpc_urls]
        return cls(clients, max_lag=chain.max_lag, chain_id=chain.chain_id)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def serve(self, work: Callable[[RpcClient], Awaitable[T]]) -> T:
        """`work` on the endpoint `choose` picks; when it fails with an RPC error, that endpoint
        is set aside and the next one does the work again, so `work` must be safe to repeat
        (what a failed attempt committed stays committed). Raises `ChainUnavailable` when no
        endpoint could do it."""
        for _ in self.endpoints:
            try:
                client = await self.choose()
            except AllEndpointsDown:
                break
            try:
                result = await work(client)
            except RpcError as exc:
                self.set_aside(client, str(exc))
                continue
            self.succeeded(client)
            return result
        raise ChainUnavailable(f"{self.chain_id}: no RPC endpoint could serve: {self.troubles()}")

    def troubles(self) -> str:
        """Each endpoint's last error, for one line of text."""
        return "; ".join(trouble(view) for view in self.view())

    async def choose(self) -> RpcClient:
        """The first endpoint, in configured order, that answers and is not behind."""
        now = self._clock()
        due = [e for e in self.endpoints if e.set_aside_until <= now]
        if not due:
            raise AllEndpointsDown(self.endpoints[0].name, "every endpoint is set aside")
        heads = await asyncio.gather(*(self._probe(e) for e in due))
        best = max((h for h in heads if h is not None), default=None)
        if best is None:
            raise AllEndpointsDown(self.endpoints[0].name, "no endpoint answered")
        healthy: list[Endpoint] = []
        for endpoint, head in zip(due, heads, strict=True):
            if head is None:
                continue
            if best - head > self.max_lag:
                self.set_aside(endpoint.client, f"lagging {best - head} blocks behind")
            else:
                healthy.append(endpoint)
        # Never empty: the endpoint with the best head is not behind itself.
        chosen = healthy[0]
        chosen.served += 1
        return chosen.client

    async def _probe(self, endpoint: Endpoint) -> int | None:
        try:
            head = int(await endpoint.client.call("eth_blockNumber", []), 16)
        except (RpcError, ValueError, TypeError) as exc:
            self.set_aside(endpoint.client, str(exc))
            return None
        endpoint.head = head
        return head

    def set_aside(self, client: RpcClient, reason: str) -> None:
        endpoint = self._endpoint(client)
        endpoint.failures += 1
        delay = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (endpoint.failures - 1))
        endpoint.set_aside_until = self._clock() + delay
        endpoint.reason = reason
        log.warning(
            "rpc endpoint set aside",
            extra={"endpoint": endpoint.name, "reason": reason, "retry_in": delay},
        )

    def succeeded(self, client: RpcClient) -> None:
        endpoint = self._endpoint(client)
        if endpoint.failures:
            log.info("rpc endpoint back", extra={"endpoint": endpoint.name})
        endpoint.failures, endpoint.reason = 0, None

    def note(self, client: RpcClient, note: str | None, *, tracer: str | None = None) -> None:
        endpoint = self._endpoint(client)
        endpoint.note = note
        endpoint.tracer = tracer or endpoint.tracer

    def view(self) -> list[dict[str, Any]]:
        now, wall_now = self._clock(), utc_now()
        return [endpoint.view(now, wall_now) for endpoint in self.endpoints]

    async def close(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.client.close()

    def _endpoint(self, client: RpcClient) -> Endpoint:
        return next(e for e in self.endpoints if e.client is client)


def trouble(view: dict[str, Any]) -> str:
    """`<endpoint>: <what went wrong>` from an endpoint's view."""
    name, reason = view["endpoint"], view["reason"] or "no error"
    # An RpcError names its endpoint already; a lag does not.
    return reason if reason.startswith(name) else f"{name}: {reason}"


class HealthNotes:
    """When the watcher writes its endpoints' health for `/health` and `addrpool chains`.

    At once when an endpoint's state changes (set aside, back, failed again); when only heads
    moved, at most every HEALTH_NOTE_SECONDS, so a serving endpoint's head is never more than
    that (and a poll) behind. Not on every poll: SQLite has one writer for everyone.
    `retryInSeconds` needs no write at all: readers count it down from the stored `retryAt`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._every = HEALTH_NOTE_SECONDS
        self._noted: tuple[object, object] | None = None
        self._noted_at = -math.inf

    def due(self, views: list[dict[str, Any]], *, all_down: bool) -> bool:
        state, heads = _state_and_heads(views, all_down)
        if self._noted is None or state != self._noted[0]:
            return True
        return heads != self._noted[1] and self._clock() - self._noted_at >= self._every

    def written(self, views: list[dict[str, Any]], *, all_down: bool) -> None:
        self._noted = _state_and_heads(views, all_down)
        self._noted_at = self._clock()


def _state_and_heads(views: list[dict[str, Any]], all_down: bool) -> tuple[object, object]:
    state = (
        all_down,
        [
            (v["endpoint"], v["state"], v["reason"], v["failures"], v.get("note"), v.get("tracer"))
            for v in views
        ],
    )
    return state, [v["head"] for v in views]
