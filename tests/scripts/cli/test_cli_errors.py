"""Errors a person can act on: one line naming the file, setting or host, and an exit status
(docs/operations.md, Exit statuses); a traceback only with --debug or for a bug."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pool.kit.errors import EXIT_BUG, EXIT_DATABASE_UNREACHABLE, EXIT_REFUSED
from tests.fixtures.cli import run_cli

NOTHING_LISTENS = "postgresql://postgres@127.0.0.1:1/addrpool"
UNREACHABLE = "cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no ADDRPOOL_ variable but a SQLite file of this test's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return clean | {"ADDRPOOL_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}


@pytest.fixture
def migrated(env: dict[str, str]) -> dict[str, str]:
    """`env` with its database made (read-only commands never make one)."""
    assert run_cli(["db", "upgrade"], env=env).returncode == 0
    return env


def _one_line(done: subprocess.CompletedProcess[str], status: int = EXIT_REFUSED) -> str:
    """The command failed with `status` and said why in one line on stderr, nothing else."""
    assert done.returncode == status, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "addrpool.toml"
    path.write_text(text)
    return str(path)


def test_a_toml_syntax_error_names_the_file_and_the_line(env, tmp_path) -> None:
    path = _config(tmp_path, 'network = "testnet"\ncooldown = "P3D\n')
    line = _one_line(run_cli(["pool", "summary"], env=env | {"ADDRPOOL_CONFIG": path}))
    assert f"{path} is not valid TOML" in line and "line 2" in line


def test_a_missing_configuration_file_is_named(env, tmp_path) -> None:
    absent = str(tmp_path / "absent.toml")
    for done in (
        run_cli(["keys", "list"], env=env | {"ADDRPOOL_CONFIG": absent}),
        run_cli(["--config", absent, "keys", "list"], env=env),
        run_cli(["keys", "list", "--config", absent], env=env),
    ):
        assert f"the configuration file {absent} (--config or ADDRPOOL_CONFIG) does not exist" in (
            _one_line(done)
        )


def test_config_option_reads_that_file_before_or_after_the_command(migrated, tmp_path) -> None:
    path = _config(tmp_path, "[alerts.thresholds]\nevm = 7\n")
    for argv in (["--config", path, "pool", "stats", "--json"], ["pool", "stats", "--json", "--config", path]):  # fmt: skip
        done = run_cli(argv, env=migrated)
        assert json.loads(done.stdout)["evm"]["threshold"] == 7, done.stderr


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('[chains.ethereum-sepolia]\nrpc_url = ["https://rpc.example"]\n',
         "chains.ethereum-sepolia.rpc_url: unknown key (did you mean rpc_urls?)"),
        ('databse_url = "sqlite:///elsewhere.db"\n',
         "databse_url: unknown key (did you mean database_url?)"),
        ("[reconcile]\nintervl = 60\n", "reconcile.intervl: unknown key (did you mean interval?)"),
        ('[chains.my-chain]\nprotocol = "evm"\n[chains.my-chain.tokens.USDT]\ncontrct = "0x1"\n',
         "chains.my-chain.tokens.USDT.contrct: unknown key (did you mean contract?)"),
        ('[[alerts.hooks]]\nname = "a"\ntype = "http"\nurll = "https://h.example"\n',
         "alerts.hooks.0.urll: unknown key (did you mean url?)"),
        ('[chains.ethereum-sepolia]\nrpc_urls = ["not a url"]\n',
         "chains.ethereum-sepolia.rpc_urls: 'not a url' is not an http(s) URL"),
    ],
)  # fmt: skip
def test_a_key_the_configuration_does_not_know_is_refused_with_the_closest_name(
    env, tmp_path, toml, said
) -> None:
    path = _config(tmp_path, toml)
    line = _one_line(run_cli(["pool", "summary"], env=env | {"ADDRPOOL_CONFIG": path}))
    assert said in line and path in line, line
    assert not (tmp_path / "elsewhere.db").exists()


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("ADDRPOOL_COOLDOWN", "banana",
         "cooldown: 'banana' (from ADDRPOOL_COOLDOWN?) is not a duration: use ISO 8601"),
        ("ADDRPOOL_DATABSE_URL", "sqlite:///x.db",
         "ADDRPOOL_DATABSE_URL is not a setting (did you mean ADDRPOOL_DATABASE_URL?)"),
        ("ADDRPOOL_RECONCILE__INTERVL", "60",
         "reconcile.intervl: unknown key (did you mean interval?)"),
        ("ADDRPOOL_RECONCILE__INTERVAL", "0",
         "reconcile.interval: must be a positive duration"),
    ],
)  # fmt: skip
def test_a_bad_environment_variable_is_one_line(env, variable, value, said) -> None:
    line = _one_line(run_cli(["pool", "summary"], env=env | {variable: value}))
    assert said in line, line


def test_the_projects_own_variables_are_not_refused(migrated) -> None:
    own = {"ADDRPOOL_TEST_POSTGRES_URL": NOTHING_LISTENS, "ADDRPOOL_ANVIL": "/bin/true"}
    done = run_cli(["pool", "summary", "--json"], env=migrated | own)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "argv", [["pool", "summary"], ["db", "upgrade"], ["db", "current"], ["serve", "--port", "1"]]
)
def test_postgresql_with_nothing_listening_is_one_line(env, argv) -> None:
    done = run_cli(argv, env=env | {"ADDRPOOL_DATABASE_URL": NOTHING_LISTENS})
    line = _one_line(done, EXIT_DATABASE_UNREACHABLE)
    assert UNREACHABLE in line and "ADDRPOOL_DATABASE_URL" in line, line


def test_worker_with_nothing_listening_is_one_line() -> None:
    """A real process: `worker` would run until stopped if it started."""
    import sys

    installed = Path(sys.executable).parent / "addrpool"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    done = subprocess.run(
        [str(installed), "worker"],
        env=clean | {"ADDRPOOL_DATABASE_URL": NOTHING_LISTENS},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert UNREACHABLE in _one_line(done, EXIT_DATABASE_UNREACHABLE)


def test_a_sqlite_file_in_a_missing_directory_is_named(env, tmp_path) -> None:
    missing = tmp_path / "no" / "such" / "a.db"
    done = run_cli(["db", "upgrade"], env=env | {"ADDRPOOL_DATABASE_URL": f"sqlite:///{missing}"})
    assert f"cannot open the SQLite database {missing}" in (
        _one_line(done, EXIT_DATABASE_UNREACHABLE)
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["pool", "summary"],
        ["pool", "stats"],
        ["keys", "list"],
        ["alerts", "list"],
        ["chains"],
        ["webhooks", "list"],
        ["webhooks", "deliveries"],
        ["reconcile", "--latest"],
        ["totals"],
        ["db", "current"],
    ],
)
def test_read_only_commands_never_create_a_database(env, tmp_path, argv) -> None:
    done = run_cli(argv, env=env)
    line = _one_line(done, EXIT_DATABASE_UNREACHABLE)
    assert f"no database at {tmp_path / 'a.db'} (database_url from ADDRPOOL_DATABASE_URL)" in line
    assert not (tmp_path / "a.db").exists()


def test_a_missing_database_says_how_the_configuration_was_found(
    env, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default database is ./addrpool.db
    del env["ADDRPOOL_DATABASE_URL"]
    path = _config(tmp_path, 'network = "testnet"\n')
    line = _one_line(run_cli(["--config", path, "keys", "list"], env=env), 3)
    assert f"(database_url from the default: neither ADDRPOOL_DATABASE_URL nor {path}" in line
    assert not (tmp_path / "addrpool.db").exists()


def test_json_output_carries_the_same_error(env) -> None:
    done = run_cli(
        ["pool", "summary", "--json"], env=env | {"ADDRPOOL_DATABASE_URL": NOTHING_LISTENS}
    )
    assert done.returncode == EXIT_DATABASE_UNREACHABLE
    error = json.loads(done.stdout)
    assert error["code"] == "DATABASE_UNREACHABLE" and UNREACHABLE in error["message"]


def test_importing_a_directory_says_so(env, tmp_path) -> None:
    line = _one_line(run_cli(["import", str(tmp_path), "--protocol", "evm"], env=env))
    assert f"{tmp_path} is a directory" in line


def test_rescan_of_an_unknown_chain_lists_the_configured_ones(env, tmp_path) -> None:
    path = _config(tmp_path, '[chains.my-devnet]\nprotocol = "evm"\n')
    done = run_cli(
        ["rescan", "--chain", "nope", "--from-block", "1"], env=env | {"ADDRPOOL_CONFIG": path}
    )
    assert "no chain 'nope' is configured; configured chains: my-devnet" in _one_line(done)


def test_the_latest_reconciliation_before_any_run_says_there_is_none(migrated) -> None:
    line = _one_line(run_cli(["reconcile", "--latest"], env=migrated))
    assert "no reconciliation has run yet" in line and "addrpool reconcile" in line


def test_debug_shows_the_traceback_behind_the_line(env) -> None:
    done = run_cli(["--debug", "pool", "summary"], env=env | {"ADDRPOOL_COOLDOWN": "banana"})
    assert done.returncode == EXIT_REFUSED
    assert "Traceback" in done.stderr and done.stderr.splitlines()[-1].startswith("error: ")


def test_a_bug_shows_its_traceback_and_a_status_of_its_own(env, monkeypatch) -> None:
    from scripts.cli import keys

    async def broken(*_: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(keys, "keys_list", broken)
    done = run_cli(["keys", "list"], env=env)
    assert done.returncode == EXIT_BUG
    assert "Traceback" in done.stderr and "this is a bug" in done.stderr


def test_version() -> None:
    from pool import __version__

    done = run_cli(["--version"])
    assert (done.returncode, done.stdout.strip()) == (0, f"addrpool {__version__}")


def test_serve_on_a_sqlite_file_in_a_missing_directory_is_named(env, tmp_path) -> None:
    missing = tmp_path / "no" / "such" / "a.db"
    done = run_cli(["serve"], env=env | {"ADDRPOOL_DATABASE_URL": f"sqlite:///{missing}"})
    assert "cannot open the SQLite database" in _one_line(done, EXIT_DATABASE_UNREACHABLE)


def test_debug_never_shows_a_secret_from_the_configuration(env, tmp_path) -> None:
    path = _config(
        tmp_path,
        'binding_backend = "payin"\nupstream_api_key = "UPKEY444SECRET"\n'
        '[[alerts.hooks]]\nname = "ops"\ntype = "http"\nsecret = "HOOKSECRET777"\n',
    )
    done = run_cli(["--debug", "pool", "summary"], env=env | {"ADDRPOOL_CONFIG": path})
    assert done.returncode == EXIT_REFUSED and "Traceback" in done.stderr
    assert "UPKEY444SECRET" not in done.stderr + done.stdout
    assert "HOOKSECRET777" not in done.stderr + done.stdout


def test_a_bad_rpc_url_is_named_without_its_path(env, tmp_path) -> None:
    path = _config(
        tmp_path, '[chains.ethereum-sepolia]\nrpc_urls = ["wss://rpc.example/v3/PROVIDERKEY123"]\n'
    )
    line = _one_line(run_cli(["pool", "summary"], env=env | {"ADDRPOOL_CONFIG": path}))
    assert "'wss://rpc.example/…' is not an http(s) URL" in line and "PROVIDERKEY123" not in line


def test_a_variable_that_is_not_json_is_one_line(env) -> None:
    done = run_cli(["pool", "summary"], env=env | {"ADDRPOOL_RATE_LIMITS__SCOPES": "{bad"})
    assert "rate_limits" in _one_line(done) and "takes JSON" in done.stderr


def test_a_database_url_whose_port_is_not_a_number_is_one_line(env) -> None:
    url = "postgresql://user:PASSWORD99@db.example:notaport/x"
    line = _one_line(run_cli(["pool", "summary"], env=env | {"ADDRPOOL_DATABASE_URL": url}))
    assert "is not a database URL" in line and "PASSWORD99" not in line
