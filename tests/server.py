"""Run the real `addrpool` server as a subprocess on a free loopback port; one-shot commands
run in this process (tests/cli.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import httpx

from tests.cli import run_cli

STARTUP_DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(*args: str, database_url: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`addrpool ARGS` (in this process: tests/cli.py) on `database_url`."""
    env = {**os.environ, "ADDRPOOL_DATABASE_URL": database_url}
    return run_cli(args, env=env, check=check)


def cli_in(env: dict[str, str], *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """`addrpool ARGS` (in this process) with exactly this environment; it must exit `expect`."""
    done = run_cli(args, env=env)
    assert done.returncode == expect, done.stdout + done.stderr
    return done


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: IO[str]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def terminate(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


@contextmanager
def running_server(
    database_url: str,
    *,
    command: str = "serve",
    workers: int = 1,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    port = port or free_port()
    env = {**os.environ, "ADDRPOOL_DATABASE_URL": database_url, "ADDRPOOL_LOG_LEVEL": "WARNING"}
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "scripts.cli.main", command, "--port", str(port)]
    argv += ["--workers", str(workers)]
    # A file, not a pipe: nobody reads a pipe while the test runs, and a full one would block
    # the server's logging and so the server itself.
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        server = Server(process, port, log)
        try:
            _wait_until_healthy(server)
            yield server
        finally:
            if process.poll() is None:
                server.terminate()


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise RuntimeError(f"addrpool exited with {code}:\n{server.output()}")
        try:
            if httpx.get(server.base_url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("addrpool did not become healthy in time")
