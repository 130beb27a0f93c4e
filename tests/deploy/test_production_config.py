"""deploy/: the production configuration example loads through the real settings loader, and
the systemd units run commands the `addrpool` parser accepts."""

from __future__ import annotations

import os
import shlex
from datetime import timedelta
from pathlib import Path

import pytest

from chains.presets import watched_chains
from pool.kit.config import load_settings
from scripts.cli.main import _parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def environment_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile=, as far as the example uses it: KEY=VALUE and comments."""
    lines = path.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_the_production_example_loads_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ADDRPOOL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(DEPLOY / "addrpool.production.toml"))
    secrets = environment_file(DEPLOY / "addrpool.production.env")
    assert set(secrets) == {
        "ADDRPOOL_DATABASE_URL",
        "ADDRPOOL_SECRET_KEY",
        "ADDRPOOL_METRICS_TOKEN",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.network == "mainnet" and settings.workers == 4
    assert settings.database_url.startswith("postgresql://addrpool:REPLACE_WITH_")  # env wins
    assert settings.secret_key is not None and settings.metrics_token is not None
    assert settings.cooldown == timedelta(days=7)
    assert settings.alerts.thresholds == {"evm": 500, "tron": 300}
    assert [hook.name for hook in settings.alerts.hooks] == ["slack", "pager"]
    assert settings.reconcile.interval == timedelta(minutes=10)
    watched = {chain.chain_id: chain for chain in watched_chains(settings)}
    assert sorted(watched) == ["ethereum-mainnet", "tron-mainnet"]
    assert len(watched["ethereum-mainnet"].rpc_urls) == 2
    assert sorted(t.symbol for t in watched["ethereum-mainnet"].tokens) == ["USDC", "USDT"]
    [usdt] = [t for t in watched["ethereum-mainnet"].tokens if t.symbol == "USDT"]
    assert usdt.min_amount == 1_000_000  # "1" USDT, 6 decimals
    assert [t.symbol for t in watched["tron-mainnet"].tokens] == ["USDT"]  # USDC disabled


@pytest.mark.parametrize("unit", ["addrpool-api.service", "addrpool-worker.service"])
def test_the_systemd_units_run_real_commands(unit: str) -> None:
    text = (DEPLOY / "systemd" / unit).read_text()
    [exec_start] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    program, *argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert program.endswith("/bin/addrpool")
    assert _parser().parse_args(argv).command == unit.removeprefix("addrpool-").split(".")[0]
    assert "EnvironmentFile=/etc/addrpool/addrpool.env" in text
    assert "Environment=ADDRPOOL_CONFIG=/etc/addrpool/addrpool.toml" in text
