"""`addrpool pool stats`, `addrpool alerts list|test` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.cli.main import main
from tests.fixtures.helpers import random_addresses
from tests.fixtures.server import cli_in
from tests.scripts.run.test_worker_cli import worker_env

pytestmark = pytest.mark.server


def test_pool_stats_and_alert_commands(tmp_path: Path, receivers) -> None:
    hook = receivers((200, {}, 0.0), (500, {}, 0.0))
    ran = tmp_path / "ran.json"
    command = f"import sys; open({str(ran)!r}, 'w').write(sys.stdin.read())"
    config = (
        "[alerts]\nthresholds = { evm = 5 }\nhooks_allow_private = true\n"  # a loopback hook
        f'[[alerts.hooks]]\nname = "ops"\ntype = "http"\nurl = "{hook.url}"\n'
        f'[[alerts.hooks]]\nname = "pager"\ntype = "command"\n'
        f"command = [{json.dumps(sys.executable)}, '-c', {json.dumps(command)}]\n"
    )
    env = worker_env(tmp_path, config)
    addresses = tmp_path / "addresses.txt"
    addresses.write_text("\n".join(f"0x{n:040x}" for n in range(1, 4)) + "\n")

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        return cli_in(env, *args, expect=expect)

    run("import", str(addresses), "--protocol", "evm")
    stats = json.loads(run("pool", "stats", "--json", expect=1).stdout)  # 3 free < 5
    assert (stats["evm"]["available"], stats["evm"]["threshold"]) == (3, 5)
    assert stats["evm"]["belowThreshold"] is True
    assert "projected exhaustion" in run("pool", "stats", expect=1).stdout
    assert json.loads(run("pool", "summary", "--json").stdout)["evm"]["total"] == 3
    assert json.loads(run("alerts", "list", "--json").stdout) == []

    tested = json.loads(run("alerts", "test", "--json").stdout)
    assert tested == {"ops": "ok", "pager": "ok"}
    assert json.loads(hook.requests[0][2])["test"] is True
    assert json.loads(ran.read_text())["alert"]["kind"] == "test"
    failing = json.loads(run("alerts", "test", "--json", expect=1).stdout)
    assert failing["ops"].startswith("failed: HTTP 500")


def test_a_private_alert_hook_stops_start_up_with_one_line(tmp_path: Path) -> None:
    config = '[[alerts.hooks]]\nname = "ops"\ntype = "http"\nurl = "https://127.0.0.1:1/x"\n'
    env = worker_env(tmp_path, config)
    expected = (
        "error: alert hook 'ops' ([[alerts.hooks]] url): 127.0.0.1 is not a public unicast "
        "address; [alerts] hooks_allow_private = true (ADDRPOOL_ALERTS__HOOKS_ALLOW_PRIVATE) "
        "allows it"
    )
    for command in (["alerts", "test"], ["worker"], ["serve", "--port", "0"]):
        refused = cli_in(env, *command, expect=2)
        assert refused.stderr.splitlines() == [expected], command
    allowed = {**env, "ADDRPOOL_ALERTS__HOOKS_ALLOW_PRIVATE": "true"}
    tried = json.loads(cli_in(allowed, "alerts", "test", "--json", expect=1).stdout)
    assert tried["ops"].startswith("failed: ClientConnectorError")  # tried: nobody listens


def test_a_bad_setting_is_one_line_for_a_person_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "untouched.db"
    config = tmp_path / "addrpool.toml"
    config.write_text(f'database_url = "sqlite:///{database}"\n[alerts]\nmargin = 10\n')
    for name in [n for n in os.environ if n.startswith("ADDRPOOL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(config))
    assert main(["pool", "stats"]) == 2
    shown = capsys.readouterr()
    assert shown.err == (
        "error: invalid configuration: alerts.margin: must be a fraction from 0 to 1"
        f" (0.1 = 10 %); 10 would be 1000 % (read from {config} and ADDRPOOL_* variables)\n"
    )
    assert shown.out == ""
    assert not database.exists()


def test_pool_stats_of_an_evm_only_pool_exits_0(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Tron never imported is not in use: a cron job on an EVM-only deployment stays quiet."""
    for name in [n for n in os.environ if n.startswith("ADDRPOOL_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "addrpool.toml"
    config.write_text("[alerts]\nthresholds = { evm = 2 }\n")
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(config))
    monkeypatch.setenv("ADDRPOOL_DATABASE_URL", database_url)
    addresses = tmp_path / "evm.txt"
    addresses.write_text("\n".join(random_addresses("evm", 3)) + "\n")
    assert main(["import", str(addresses), "--protocol", "evm"]) == 0
    capsys.readouterr()

    assert main(["pool", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["tron"]["inUse"], stats["tron"]["belowThreshold"]) == (False, False)
    assert (stats["evm"]["inUse"], stats["evm"]["belowThreshold"]) == (True, False)
    assert main(["pool", "stats"]) == 0
    [tron_row] = [r for r in capsys.readouterr().out.splitlines() if r.startswith("tron")]
    assert "not in use" in tron_row
