"""Start the API under uvicorn: the app factory every worker process calls."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from chains.presets import monitored_chains
from pool.config import Settings, load_settings
from pool.logs import configure_logging

GRACEFUL_SHUTDOWN_SECONDS = 30


def app_factory() -> FastAPI:
    """Called once per uvicorn worker: each builds its own engine and key cache."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, monitored_chains=monitored_chains(settings))


def run(settings: Settings, *, workers: int) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn then stops accepting and lets requests finish."""
    configure_logging(settings.log_level)
    uvicorn.run(
        "scripts.server:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        access_log=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
