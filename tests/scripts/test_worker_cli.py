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

from scripts import anvil
from tests.devnet import Devnet

pytestmark = pytest.mark.server


def worker_env(tmp_path: Path, chains_toml: str) -> dict[str, str]:
    config = tmp_path / "addrpool.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "w.db"}"\n{chains_toml}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return {**env, "ADDRPOOL_CONFIG": str(config)}


def test_worker_without_a_chain_still_delivers_and_stops_on_sigterm(tmp_path: Path) -> None:
    log = (tmp_path / "worker.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "worker"],
        env=worker_env(tmp_path, ""),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "delivering webhooks" not in (tmp_path / "worker.log").read_text():
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert "watching no chain" in (tmp_path / "worker.log").read_text()


def test_worker_watches_and_stops_on_sigterm(tmp_path: Path, devnet: Devnet) -> None:
    chain = (
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\npoll_interval = 0.2\n'
        f"start_block = {anvil.block_number(devnet.url)}\n"
        f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
    )
    log = (tmp_path / "worker.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "worker"],
        env=worker_env(tmp_path, chain),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "watching a new chain" not in (tmp_path / "worker.log").read_text():
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not start watching"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert "watching devnet" in (tmp_path / "worker.log").read_text()


def test_chains_and_rescan_commands(tmp_path: Path, devnet: Devnet) -> None:
    start = anvil.block_number(devnet.url)
    chain = (
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\n'
        f"start_block = {start}\n"
        f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
    )
    env = worker_env(tmp_path, chain)

    def run(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "scripts.cli", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(done.stdout)

    listed = run("chains")
    assert listed["devnet"]["watched"] is True and listed["devnet"]["cursor"] is None
    assert "polygon-amoy" not in listed  # only configured chains
    # A never-watched chain cannot be rescanned; a clear error, exit 2.
    refused = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "rescan", "--chain", "devnet", "--from-block", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "never been watched" in refused.stderr + refused.stdout
