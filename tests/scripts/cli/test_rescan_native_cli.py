"""`addrpool rescan` on a chain watching its coin: it reads the coin's transfers again, top-level
and internal, and says so (not only "token logs"), on both databases."""

from __future__ import annotations

import json
import os

import pytest

from pool.kit.config import Settings
from pool.kit.db import Database
from scripts.devnet import anvil
from tests.chains.harness import Harness, chain_config, chain_settings
from tests.fixtures.cli import run_cli
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import import_into_pool, load_pool, random_evm_address

ETH = 10**18


@pytest.mark.parametrize("tracer", ["trace", "none"])
async def test_a_rescan_reads_the_coin_again_and_says_how(
    db: Database, devnet: Devnet, settings: Settings, tracer: str
) -> None:
    toml = chain_settings(devnet, native=True, native_symbol="ETH", tracer=tracer)
    harness = Harness(db, devnet, await load_pool(db, "evm", 2), chain_config(devnet, **toml))
    late = random_evm_address()  # paid before it was imported: the watcher did not look
    try:
        payer = anvil.deploy_payer(devnet.url)
        top = anvil.send_value(devnet.url, late, ETH)
        inner = anvil.pay(devnet.url, payer, [late], [2 * ETH])
        await harness.poll()
        assert await harness.deposits() == []
        await import_into_pool(db, "evm", [late], actor="late")
    finally:
        await harness.client.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")},
        "ADDRPOOL_DATABASE_URL": settings.database_url,
        "ADDRPOOL_NETWORK": "testnet",
        "ADDRPOOL_CHAINS": json.dumps({"devnet": toml}),
    }
    args = ["rescan", "--chain", "devnet", "--from-block", str(toml["start_block"])]
    report = json.loads(run_cli([*args, "--json"], env=env, check=True).stdout)
    internal = tracer != "none"
    assert (report["transfersToPool"], report["recorded"]) == (1 + internal, 1 + internal)
    assert report["native"] == {
        "currency": "ETH",
        "transfersToPool": 1 + internal,
        "tracer": tracer,
    }
    found = {(r["tx_hash"], r["trace_position"]) for r in await harness.deposits()}
    assert found == {(top, "tx"), (inner, "tx.0")} if internal else {(top, "tx")}
    text = run_cli(args, env=env, check=True).stdout
    how = {
        "trace": "top-level and internal, with trace_block",
        "none": "top-level only: no trace API",
    }[tracer]
    assert f"token logs and the blocks' ETH transfers ({how}) read" in text
    assert f"{1 + internal} to pool addresses ({1 + internal} of ETH)" in text
    assert "0 new deposits recorded" in text
