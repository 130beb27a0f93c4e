"""`addrpool rescan` through the chain's endpoint failover, as the real command, on both
databases: a dead first endpoint is set aside, every endpoint dead is one line (or one JSON
object), never a traceback, and nothing is written."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pool.kit.db import Database
from tests.chains.harness import USDT, Harness, chain_config
from tests.conftest import run_sync
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import import_into_pool, load_pool, random_evm_address
from tests.fixtures.server import cli_in, free_port


@dataclass(frozen=True)
class Missed:
    """A deposit the watcher could not see (its address was imported after its block)."""

    start_block: int
    address: str


async def _watch_then_import_late(database_url: str, devnet: Devnet) -> Missed:
    db = Database(database_url, pool_size=2)
    harness = Harness(db, devnet, await load_pool(db, "evm", 3), chain_config(devnet))
    try:
        late = random_evm_address()
        harness.send(late, 3 * USDT)
        await harness.poll()
        await import_into_pool(db, "evm", [late], actor="late")
        assert harness.chain.start_block is not None
        return Missed(harness.chain.start_block, late)
    finally:
        await harness.client.close()
        await db.dispose()


async def _deposits(database_url: str, devnet: Devnet) -> list[dict[str, object]]:
    db = Database(database_url, pool_size=1)
    harness = Harness(db, devnet, [], chain_config(devnet))
    try:
        return await harness.deposits()
    finally:
        await harness.client.close()
        await db.dispose()


def _environment(tmp_path: Path, database_url: str, devnet: Devnet, urls: list[str]) -> dict:
    tokens = "".join(
        f'[chains.devnet.tokens.{symbol}]\ncontract = "{contract}"\ndecimals = 6\n'
        f'min_amount = "0.01"\n'
        for symbol, contract in (("USDT", devnet.usdt), ("USDC", devnet.usdc))
    )
    config = tmp_path / "addrpool.toml"
    config.write_text(
        f'[chains.devnet]\nprotocol = "evm"\nrpc_urls = {json.dumps(urls)}\n'
        f"confirmations = 3\nrpc_timeout = 2\n{tokens}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return {**env, "ADDRPOOL_CONFIG": str(config), "ADDRPOOL_DATABASE_URL": database_url}


def _dead() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def test_rescan_is_served_by_the_next_endpoint_when_the_first_is_down(
    database_url: str, devnet: Devnet, tmp_path: Path
) -> None:
    missed = run_sync(_watch_then_import_late(database_url, devnet))
    dead = _dead()
    env = _environment(tmp_path, database_url, devnet, [dead, devnet.url])
    args = ("rescan", "--chain", "devnet", "--from-block", str(missed.start_block))
    done = cli_in(env, *args, "--json")
    report = json.loads(done.stdout)
    assert (report["transfersToPool"], report["recorded"]) == (1, 1)
    assert [(e["endpoint"], e["state"]) for e in report["endpoints"]] == [
        (dead, "set_aside"),
        (devnet.url, "ok"),
    ]
    [row] = run_sync(_deposits(database_url, devnet))
    assert row["amount"] == 3 * USDT
    text = cli_in(env, *args).stdout  # again: idempotent, and the person is told of the dead one
    assert "0 new deposits recorded" in text and f"set aside: {dead}" in text


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_rescan_with_every_endpoint_down_is_one_clear_error(
    database_url: str, devnet: Devnet, tmp_path: Path, as_json: bool
) -> None:
    missed = run_sync(_watch_then_import_late(database_url, devnet))
    first, second = _dead(), _dead()
    env = _environment(tmp_path, database_url, devnet, [first, second])
    args = ["rescan", "--chain", "devnet", "--from-block", str(missed.start_block)]
    done = cli_in(env, *args, *(["--json"] if as_json else []), expect=2)
    if as_json:
        error = json.loads(done.stdout)
        assert (error["success"], error["code"]) == (False, "CHAIN_UNAVAILABLE")
        message = error["message"]
        assert done.stderr == ""
    else:
        assert done.stdout == ""
        [line] = done.stderr.splitlines()
        assert line.startswith("error: devnet: ")
        message = line
    assert "devnet" in message and first in message and second in message
    assert "ClientConnectorError" in message  # what each endpoint did wrong
    assert run_sync(_deposits(database_url, devnet)) == []  # nothing written
