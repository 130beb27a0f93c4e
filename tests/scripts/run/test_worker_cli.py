"""`addrpool worker`: the watchers without the API, stopped cleanly by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.devnet import anvil
from tests.fixtures.cli import run_cli
from tests.fixtures.devnet import Devnet

pytestmark = pytest.mark.server


def worker_env(tmp_path: Path, chains_toml: str) -> dict[str, str]:
    config = tmp_path / "addrpool.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "w.db"}"\n{chains_toml}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return {**env, "ADDRPOOL_CONFIG": str(config)}


def run_worker_until(tmp_path: Path, chains_toml: str, ready: str) -> str:
    """Start `addrpool worker`, wait for `ready` in its log, SIGTERM it: it must exit 0."""
    log_path = tmp_path / "worker.log"
    with log_path.open("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli.main", "worker"],
            env=worker_env(tmp_path, chains_toml),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while ready not in log_path.read_text():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"no {ready!r} in the worker's log"
                time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    return log_path.read_text()


def test_worker_without_a_chain_still_delivers_and_stops_on_sigterm(tmp_path: Path) -> None:
    assert "watching no chain" in run_worker_until(tmp_path, "", "delivering webhooks")


def test_worker_watches_and_stops_on_sigterm(tmp_path: Path, devnet: Devnet) -> None:
    chain = (
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\npoll_interval = 0.2\n'
        f"start_block = {anvil.block_number(devnet.url)}\n"
        f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
    )
    assert "watching devnet" in run_worker_until(tmp_path, chain, "watching a new chain")


def test_chains_and_rescan_commands(tmp_path: Path, devnet: Devnet) -> None:
    start = anvil.block_number(devnet.url)
    chain = (
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\n'
        f"start_block = {start}\n"
        f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
    )
    env = worker_env(tmp_path, chain)

    def run(*args: str) -> dict:
        return json.loads(run_cli([*args, "--json"], env=env, check=True).stdout)

    run("db", "upgrade")  # `chains` reads only: it never creates a database
    listed = run("chains")
    assert listed["devnet"]["watched"] is True and listed["devnet"]["cursor"] is None
    assert "polygon-amoy" not in listed  # only configured chains
    # A never-watched chain cannot be rescanned; a clear error, exit 2.
    refused = run_cli(["rescan", "--chain", "devnet", "--from-block", "0"], env=env)
    assert refused.returncode == 2 and "never been watched" in refused.stderr + refused.stdout
