"""Start the API under uvicorn: the app factory every worker process calls."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from chains.presets import monitored_chains
from pool.kit.config import Settings, load_settings
from pool.kit.logs import configure_logging
from pool.kit.metrics import MULTIPROC_DIR_ENV
from scripts.run.workers import workers_running

GRACEFUL_SHUTDOWN_SECONDS = 30


def app_factory() -> FastAPI:
    """`addrpool api`: called once per uvicorn worker; each builds its own engine and key cache."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, monitored_chains=monitored_chains(settings))


def serve_factory() -> FastAPI:
    """`addrpool serve`: the API with every chain watcher running beside it, in one process."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(
        settings,
        monitored_chains=monitored_chains(settings),
        background=lambda db: workers_running(settings, db),
    )


def run(settings: Settings, *, workers: int, with_watchers: bool = False) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn then stops accepting and lets requests finish."""
    configure_logging(settings.log_level)
    # uvicorn re-raises the stop signal once it has drained; by then the shutdown was clean,
    # so the process should exit 0 rather than die of the signal.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _drained)
    with shared_metrics_directory(workers):
        uvicorn.run(
            "scripts.run.server:serve_factory"
            if with_watchers
            else "scripts.run.server:app_factory",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            access_log=False,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )


@contextmanager
def shared_metrics_directory(workers: int) -> Iterator[None]:
    """Several workers: a fresh PROMETHEUS_MULTIPROC_DIR for their counters, removed at the end.

    Each worker counts only its own binds, and a scrape reaches one worker at random; in
    prometheus-client's multiprocess mode each writes its counters to files in this directory
    and whichever answers sums them all. uvicorn spawns its workers, so they inherit the
    variable and import prometheus-client afresh, as the mode requires. A directory the
    operator set (to share with `addrpool worker`) is used as it is.
    """
    if workers == 1 or os.environ.get(MULTIPROC_DIR_ENV):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="addrpool-metrics-") as directory:
        os.environ[MULTIPROC_DIR_ENV] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROC_DIR_ENV]


def _drained(_signum: int, _frame: FrameType | None) -> None:
    """Reached only after uvicorn has finished its graceful shutdown."""
