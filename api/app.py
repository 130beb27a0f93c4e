"""The FastAPI application: routes, error envelope, body limit, key cache."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from api.access_log import AccessLog
from api.auth import KeyCache
from api.bind_shortcut import install_bind_shortcut
from api.console.access import install_sign_in_redirect
from api.context import AppContext
from api.errors import install_error_handlers
from api.head_requests import HeadAsGet
from api.limits import BodySizeLimit
from api.openapi import install_openapi, operation_id
from api.rate_limits import RateLimiter, RateLimitHeaders
from api.routes import (
    alerts,
    checkout,
    console,
    console_deposits,
    console_imports,
    console_operations,
    console_payments,
    console_records,
    deposits,
    events,
    health,
    metrics,
    orders,
    pages,
    payment_links,
    reconciliation,
    upstream,
    webhooks,
)
from api.routes import pool as pool_routes
from api.text_guard import TextGuard
from chains.presets import order_chains, unwatched_chains
from pool import __version__
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.vocabulary import Protocol

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
# Given the app's database, an async context manager whose body is the app's lifetime.
Background = Callable[[Database], contextlib.AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    monitored_chains: dict[Protocol, list[str]] | None = None,
    background: Background | None = None,
) -> FastAPI:
    """`db` is created (and disposed of at shutdown) here unless the caller owns one.

    `background` runs beside the API for the app's lifetime (`serve` passes the watchers);
    the API itself never imports them (no RPC call inside a request).
    """
    owns_db = db is None
    database = db or Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pooled=settings.database_pooled,
        session_url=settings.database_session_url,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise show up as latency spikes under load.
        gc.collect()
        gc.freeze()
        async with background(database) if background else contextlib.nullcontext():
            yield
        await _app.state.ctx.console_jobs.close()
        await _app.state.ctx.pool_alerts.close()
        if _app.state.ctx.upstream is not None:
            await _app.state.ctx.upstream.close()
        if owns_db:
            await database.dispose()

    app = FastAPI(
        title="addrpool",
        version=__version__,
        description="Self-hosted deposit address pool manager with a PayIn-compatible API.",
        lifespan=lifespan,
        # No redirect for a trailing slash: an unknown path answers the 404 envelope.
        redirect_slashes=False,
        # Served by api/openapi.py from local assets: the default pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
        # operationId = the route function's name: what a generated client calls it.
        generate_unique_id_function=operation_id,
        # addrpool reports through its logs and /metrics, never OpenTelemetry: without this,
        # every request asks OpenTelemetry's global providers whether one has been set up
        # (docs/performance.md, Bind).
        telemetry=NO_TELEMETRY,
    )
    app.state.ctx = AppContext(
        settings,
        database,
        monitored_chains or {},
        unwatched_chains(settings),
        order_chains=order_chains(settings),
    )
    app.state.key_cache = KeyCache(
        database, network=settings.network, ttl_seconds=settings.auth_cache_seconds
    )
    app.state.rate_limiter = RateLimiter(settings.rate_limits)
    install_error_handlers(app)
    install_sign_in_redirect(app)
    install_openapi(app)
    # The last middleware added runs first: the size limit, then the text guard's buffering;
    # the rate-limit headers go on whatever answer comes back, the size limit's 413 aside
    # (it answers before any key is read). HEAD becomes GET innermost: the access log still
    # says HEAD.
    app.add_middleware(HeadAsGet)
    if settings.rate_limits.enabled:
        app.add_middleware(RateLimitHeaders)
    app.add_middleware(TextGuard)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        per_path={
            pool_routes.IMPORT_PATH: settings.max_import_bytes,
            console_imports.IMPORT_PATH: settings.max_import_bytes,
        },
    )
    if settings.access_log:
        # Outermost: it times and reports every answer, the limits' refusals included.
        app.add_middleware(AccessLog)
    for module in (
        deposits,
        orders,
        payment_links,
        pool_routes,
        webhooks,
        events,
        reconciliation,
        alerts,
        health,
        pages,
        checkout,
        console_imports,
        console_records,  # before console: its catch-all answers every other /ui path
        console_deposits,
        console_payments,
        console_operations,
        console,
    ):
        app.include_router(module.router)
    install_bind_shortcut(app)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    if settings.binding_backend == "payin":
        app.include_router(upstream.router_for(settings.upstream_webhook_path))
    return app
