"""What every route needs, built once per process and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from api.console.jobs import ConsoleJobs
from pool.alerts.engine import PoolAlerts
from pool.bindings.bind_hours import BindHours
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.orders.records import OrderChain
from pool.upstream.client import UpstreamClient
from pool.vocabulary import Protocol


@dataclass(slots=True)
class AppContext:
    settings: Settings
    db: Database
    # chain ids actually watched (configured with an RPC URL), per protocol.
    monitored_chains: dict[Protocol, list[str]] = field(default_factory=dict)
    # chain id → why it is not watched (no RPC URL, no token): `/health` says so.
    unwatched_chains: dict[str, str] = field(default_factory=dict)
    # The chains an order may name (configured and watched), by chain id.
    order_chains: dict[str, OrderChain] = field(default_factory=dict)
    # Protocols a bind has already warned about having no watched chain (once each).
    warned_unmonitored: set[Protocol] = field(default_factory=set)
    # Re-evaluates the pool-low alert moments after a bind, import or archive.
    pool_alerts: PoolAlerts = field(init=False)
    # Upstream mode's PayIn client; None when addrpool allocates from its own pool.
    upstream: UpstreamClient | None = field(init=False)
    # Console imports running in this process's background.
    console_jobs: ConsoleJobs = field(default_factory=ConsoleJobs)
    # Binds per settled hour, counted once per process: the summary's rate, the chart.
    bind_hours: BindHours = field(default_factory=BindHours)

    def __post_init__(self) -> None:
        self.pool_alerts = PoolAlerts(self.db, self.settings.alerts)
        self.upstream = _upstream_client(self.settings)


def _upstream_client(settings: Settings) -> UpstreamClient | None:
    if settings.binding_backend != "payin" or not settings.upstream_url:
        return None
    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else ""
    return UpstreamClient(
        settings.upstream_url,
        key,
        timeout=settings.upstream_timeout,
        retries=settings.upstream_retries,
    )


async def context(request: Request) -> AppContext:
    """Async on purpose: FastAPI runs a sync dependency in a thread, a hop per request."""
    ctx: AppContext = request.app.state.ctx
    return ctx
