"""The anvil binary (installed from npm into `.tools/`) and the node process on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self

import httpx

from scripts.devnet.anvil.rpc import POLL_INTERVAL, DevnetError, rpc

PROJECT = Path(__file__).resolve().parents[3]
TOOLS = PROJECT / ".tools"
ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64@1.7.1"
STARTUP_DEADLINE = 30.0

_LISTENING = re.compile(rb"Listening on (\S+:\d+)")


def ensure_anvil() -> Path:
    """The anvil binary: `ADDRPOOL_ANVIL`, else `.tools/`, installing it there with npm."""
    override = os.environ.get("ADDRPOOL_ANVIL")
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise DevnetError(f"ADDRPOOL_ANVIL={override} is not an executable file")
        return path
    binary = TOOLS / "node_modules" / ".bin" / "anvil"
    if not os.access(binary, os.X_OK):
        npm_install(ANVIL_PACKAGE)
    return binary


def npm_install(package: str) -> None:
    """Install an npm package into `.tools/` (anvil, and the TypeScript compiler the tests use)."""
    npm = shutil.which("npm")
    if npm is None:
        raise DevnetError(f"no npm to install {package}: install Node.js or set ADDRPOOL_ANVIL")
    argv = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(TOOLS), package]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise DevnetError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


# -- the node --------------------------------------------------------------------------------


class Anvil:
    """An anvil node on 127.0.0.1; `with Anvil() as node:` or explicit `start()`/`stop()`.

    `block_time=None` mines a block per transaction; a number mines on that interval instead.
    Output goes to a log file: nobody reads a pipe while tests run, and a full one would block
    the node.
    """

    def __init__(
        self,
        *,
        block_time: float | None = None,
        chain_id: int = 31337,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        startup_deadline: float = STARTUP_DEADLINE,
    ) -> None:
        self.block_time = block_time
        self.chain_id = chain_id
        self.extra_args = tuple(extra_args)
        self.startup_deadline = startup_deadline
        self._log_path = log_path
        self._owns_log = log_path is None
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise DevnetError("anvil is not running")
        return self._url

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            raise DevnetError("anvil has not been started")
        return self._log_path

    def argv(self) -> list[str]:
        # Port 0: anvil binds a free port itself and prints it, so there is no probe-then-bind race.
        argv = [str(ensure_anvil()), "--host", "127.0.0.1", "--port", "0"]
        argv += ["--chain-id", str(self.chain_id)]
        if self.block_time is not None:
            argv += ["--block-time", str(self.block_time)]
        return argv + list(self.extra_args)

    def start(self) -> Self:
        if self._process is not None:
            raise DevnetError("anvil is already running")
        argv = self.argv()
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="anvil-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._url = self._wait_ready(self._process)
        except BaseException:
            self._owns_log = False  # the error names the log: keep it to read
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process, self._url = self._process, None, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def log_tail(self, lines: int = 30) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> str:
        deadline = time.monotonic() + self.startup_deadline
        url = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._fail(f"anvil exited with status {process.returncode}")
            url = url or self._listening_url()
            if url is not None and _answers(url):
                return url
            time.sleep(POLL_INTERVAL)
        self._fail(f"anvil did not answer eth_blockNumber within {self.startup_deadline}s")

    def _listening_url(self) -> str | None:
        match = _LISTENING.search(self.log_path.read_bytes())
        return f"http://{match.group(1).decode()}" if match else None

    def _fail(self, reason: str) -> NoReturn:
        raise DevnetError(f"{reason}; log {self._log_path}, last lines:\n{self.log_tail()}")


def _answers(url: str) -> bool:
    try:
        rpc(url, "eth_blockNumber")
    except httpx.TransportError:
        return False
    return True
