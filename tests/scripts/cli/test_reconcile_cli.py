"""`addrpool reconcile`, `addrpool totals`, and the reconciliation worker inside `worker`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scripts.devnet import anvil
from tests.fixtures.devnet import Devnet
from tests.fixtures.server import cli_in
from tests.scripts.run.test_worker_cli import run_worker_until, worker_env

pytestmark = pytest.mark.server


def devnet_chain(devnet: Devnet) -> str:
    return (
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = ["{devnet.url}"]\npoll_interval = 0.2\n'
        f"start_block = {anvil.block_number(devnet.url)}\n"
        f'[chains.devnet.tokens.USDT]\ncontract = "{devnet.usdt}"\ndecimals = 6\n'
    )


def test_the_worker_reconciles_on_its_interval(tmp_path: Path, devnet: Devnet) -> None:
    config = devnet_chain(devnet) + "[reconcile]\ninterval = 1\n"
    log = run_worker_until(tmp_path, config, "reconciliation finished")
    assert "reconciliation failed" not in log


def test_reconcile_and_totals_commands(tmp_path: Path, devnet: Devnet) -> None:
    env = worker_env(tmp_path, devnet_chain(devnet))

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        return cli_in(env, *args, expect=expect)

    run("db", "upgrade")  # read-only commands never create a database
    missing = run("reconcile", "--latest", expect=2)
    assert "no reconciliation has run yet" in missing.stderr
    report = json.loads(run("reconcile", "--since", "1d", "--json").stdout)
    assert report["discrepancies"] == 0
    assert set(report["chains"]) == {"devnet"}
    assert report["restedMs"] > 0  # paced, as the worker's runs are
    flat_out = json.loads(run("reconcile", "--full-speed", "--json").stdout)
    assert flat_out["restedMs"] == 0 and flat_out["discrepancies"] == 0
    latest = json.loads(run("reconcile", "--latest", "--json").stdout)
    assert latest["id"] == flat_out["id"]
    table = run("reconcile", "--latest").stdout
    assert "not_acknowledged" in table and "devnet:" in table
    refused = run("reconcile", "--chain", "elsewhere", expect=2)
    assert "not a watched chain: elsewhere" in refused.stderr
    assert run("totals", "--csv").stdout.startswith("date,chainId,currency,tokenContract")
    assert json.loads(run("totals", "--json").stdout)["totals"] == []
    assert (
        "--until must be after --since"
        in run("totals", "--since", "1d", "--until", "2d", expect=2).stderr
    )
