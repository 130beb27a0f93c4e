"""Start the API under uvicorn: the app factory every worker process calls."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from api.app import create_app
from chains.presets import monitored_chains
from pool.kit.config import Settings, load_settings
from pool.kit.errors import ConfigurationError
from pool.kit.logs import configure_logging, uvicorn_log_config
from pool.kit.metrics import MULTIPROC_DIR_ENV
from pool.webhooks.feed import stop_all_waiting
from scripts.run.workers import workers_running

GRACEFUL_SHUTDOWN_SECONDS = 30


def app_factory() -> FastAPI:
    """`addrpool api`: called once per uvicorn worker; each builds its own engine and key cache."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, monitored_chains=monitored_chains(settings))


def serve_factory() -> FastAPI:
    """`addrpool serve`: the API with every chain watcher running beside it, in one process."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(
        settings,
        monitored_chains=monitored_chains(settings),
        background=lambda db: workers_running(settings, db),
    )


def run(
    settings: Settings,
    *,
    workers: int,
    with_watchers: bool = False,
    announce: Callable[[int], None] = lambda port: None,
) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn then stops accepting and lets requests finish.

    `announce(port)` is called once the socket is bound (and, with one worker, the app has
    started), so whoever reads "listening on ..." can connect.
    """
    configure_logging(settings.log_level, settings.log_format)
    # uvicorn re-raises the stop signal once it has drained; by then the shutdown was clean,
    # so the process should exit 0 rather than die of the signal.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _drained)
    config = uvicorn.Config(
        "scripts.run.server:serve_factory" if with_watchers else "scripts.run.server:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        access_log=False,  # api.access_log writes our own line, with the route and the key id
        log_config=uvicorn_log_config(settings.log_level, settings.log_format),
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    sock = bound_socket(settings.host, settings.port, backlog=config.backlog)
    port = int(sock.getsockname()[1])  # `--port 0`: the one the system chose
    with shared_metrics_directory(workers):
        if workers > 1:
            announce(port)  # the workers accept on this socket; until then connections queue
            Multiprocess(config, sockets=[sock]).run()
        else:
            _AnnouncingServer(config, lambda: announce(port)).run(sockets=[sock])


def bound_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """The listening socket, or one line saying why there is none (the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}; "
            "is another process using it? choose another with --port or ADDRPOOL_PORT"
        ) from None
    sock.set_inheritable(True)  # uvicorn's worker processes accept on it
    return sock


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._announce()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn waits for open requests before the app's own shutdown runs: the event feed's
        # long polls are answered now rather than held to the end of their wait.
        stop_all_waiting()
        await super().shutdown(sockets)


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
