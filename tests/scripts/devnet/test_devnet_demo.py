"""The README's demo, end to end: `addrpool devnet up`, a bind, a transfer, a confirmed deposit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import Server, free_port, started_server

pytestmark = pytest.mark.server
DEADLINE = 60.0


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    port = free_port()
    state = tmp_path / "devnet"
    argv = [sys.executable, "-m", "scripts.cli.main", "devnet", "up", "--dir", str(state)]
    argv += ["--port", str(port), "--addresses", "50", "--block-time", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    with started_server(argv, env, port) as server:
        yield server, state
        if server.process.poll() is None:
            assert server.terminate() == 0, server.output()


def wait_for(check: Callable[[], list[dict]], what: str) -> list[dict]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"no {what} within {DEADLINE}s")


def test_demo_binds_receives_and_confirms_a_deposit(demo: tuple[Server, Path]) -> None:
    server, state = demo
    key = (state / "api-key").read_text().strip()
    headers = {"Authorization": f"Bearer {key}"}
    bound = httpx.post(
        server.base_url + "/api/v1/deposits/bind",
        json={"depositReference": "demo-user", "protocol": "evm"},
        headers=headers,
    ).json()["data"]
    assert bound["monitoredChains"] == ["devnet"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    sent = subprocess.run(
        [sys.executable, "-m", "scripts.cli.main", "devnet", "send", "--dir", str(state)]
        + ["--to", bound["address"], "--amount", "25.5"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    tx_hash = sent.stdout.strip().rsplit(" ", 1)[-1]

    def deposits() -> list[dict]:
        url = server.base_url + "/api/v1/deposits?depositReference=demo-user"
        return httpx.get(url, headers=headers).json()["data"]["deposits"]

    [pending] = wait_for(deposits, "deposit")
    assert (pending["amount"], pending["currency"], pending["txHash"]) == ("25.5", "USDT", tx_hash)
    confirmed = wait_for(
        lambda: [d for d in deposits() if d["status"] == "confirmed"], "confirmation"
    )
    assert confirmed[0]["confirmations"] >= confirmed[0]["requiredConfirmations"] == 3
    health = httpx.get(server.base_url + "/health").json()["checks"]["chains"]["devnet"]
    assert health["watched"] is True and health["lag"] <= 2
