"""Run JavaScript peers under node: PayIn's guide's webhook receiver, and JSON.stringify(JSON.parse(…)).

Without node the tests that need it skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

SEED_RECEIVER = Path(__file__).with_name("seed_receiver.js")
STARTUP_DEADLINE = 10.0
# What that receiver does to a body before signing it, as a filter on stdin.
ROUND_TRIP = (
    'process.stdout.write(JSON.stringify(JSON.parse(require("fs").readFileSync(0, "utf8"))))'
)


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but node is not on PATH")
        pytest.skip("node is not on PATH")
    return node


def js_round_trip(body: bytes) -> bytes:
    """The bytes JSON.stringify(JSON.parse(body)) prints under node."""
    argv = [node_binary(), "-e", ROUND_TRIP]
    return subprocess.run(argv, input=body, capture_output=True, check=True, timeout=60).stdout


@dataclass
class Receiver:
    process: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/payin"

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextmanager
def seed_receiver(secret: str) -> Iterator[Receiver]:
    """The guide's receiver on a free loopback port, verifying with `secret`; stopped on exit."""
    env = {**os.environ, "PAYIN_WEBHOOK_SECRET": secret}
    # Output to a file, not a pipe: nobody reads a pipe while the tests run.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [node_binary(), str(SEED_RECEIVER), "0"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield Receiver(process, _wait_for_port(process, log), log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(process: subprocess.Popen[bytes], log: IO[bytes]) -> int:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        log.seek(0)
        first_line, newline, _ = log.read().partition(b"\n")
        if newline:
            return int(first_line)
        if process.poll() is not None:
            raise RuntimeError(f"seed_receiver.js exited with {process.returncode}: {first_line!r}")
        time.sleep(0.01)
    raise TimeoutError("seed_receiver.js did not print its port in time")
