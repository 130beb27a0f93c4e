"""The `addrpool` command against a real database, with and without --json."""

import asyncio
import json
import os
import subprocess

import pytest

from pool.kit.db import Database
from tests.fixtures.cli import run_cli
from tests.fixtures.helpers import make_key, random_addresses
from tests.fixtures.server import cli, cli_in


def _json(*args: str, database_url: str, check: bool = True) -> dict:
    result = cli(*args, "--json", database_url=database_url, check=check)
    return json.loads(result.stdout)


def test_keys_create_list_revoke(database_url) -> None:
    created = _json(
        "keys",
        "create",
        "--name",
        "svc",
        "--scopes",
        "deposits:read,pool:read",
        database_url=database_url,
    )
    assert created["key"].startswith("pk_test_") and created["scopes"] == [
        "deposits:read",
        "pool:read",
    ]
    listed = _json("keys", "list", database_url=database_url)
    assert listed[0]["prefix"] == created["key"][:12] and created["key"] not in json.dumps(listed)
    revoked = _json("keys", "revoke", created["key"][:12], database_url=database_url)
    assert revoked == {"revoked": [created["id"]]}
    assert _json("keys", "list", database_url=database_url)[0]["revokedAt"]
    again = cli("keys", "revoke", created["key"][:12], database_url=database_url, check=False)
    assert again.returncode == 2 and "no active key" in again.stderr


def test_unknown_scope_is_refused_with_a_clear_error(database_url) -> None:
    result = cli(
        "keys", "create", "--name", "x", "--scopes", "god", database_url=database_url, check=False
    )
    assert result.returncode == 2 and "unknown scope" in result.stderr


def test_import_summary_and_archive(database_url, tmp_path) -> None:
    addresses = random_addresses("tron", 3)
    source = tmp_path / "tron.txt"
    source.write_text("address\r\n" + "\r\n".join(addresses) + "\r\n", encoding="utf-8-sig")
    report = _json("import", str(source), "--protocol", "tron", database_url=database_url)
    assert (report["imported"], report["duplicates"]) == (3, 0) and report["batchId"]
    again = _json("import", str(source), "--protocol", "tron", database_url=database_url)
    assert (again["imported"], again["alreadyInPool"]) == (0, 3)
    archived = _json("pool", "archive", addresses[0], database_url=database_url)
    assert archived["status"] == "archived"
    summary = _json("pool", "summary", database_url=database_url)
    assert summary["tron"] | {} == summary["tron"] and summary["tron"]["available"] == 2
    assert summary["tron"]["archived"] == 1
    text = cli("pool", "summary", database_url=database_url).stdout
    assert "tron" in text and "available" in text


def test_import_with_bad_lines_lists_them_and_writes_nothing(database_url, tmp_path) -> None:
    good = random_addresses("evm", 1)[0]
    source = tmp_path / "evm.txt"
    source.write_text(f"{good}\nTR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t\n0x1234\n")
    result = cli("import", str(source), "--protocol", "evm", database_url=database_url, check=False)
    assert result.returncode == 2
    assert (
        "line 2" in result.stderr and "Tron address" in result.stderr and "line 3" in result.stderr
    )
    summary = _json("pool", "summary", database_url=database_url)
    assert summary["evm"]["total"] == 0
    dry = _json(
        "import",
        str(source),
        "--protocol",
        "evm",
        "--skip-invalid",
        "--dry-run",
        database_url=database_url,
    )
    assert dry["imported"] == 1 and dry["dryRun"] is True and len(dry["invalid"]) == 2
    assert _json("pool", "summary", database_url=database_url)["evm"]["total"] == 0


def test_db_current_reports_the_head(database_url) -> None:
    current = _json("db", "current", database_url=database_url)
    assert current["upToDate"] is True and current["revision"] == current["head"]


def test_mainnet_keys_are_live_keys(database_url, monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_NETWORK", "mainnet")
    created = _json("keys", "create", "--name", "live", database_url=database_url)
    assert created["key"].startswith("pk_live_")


def test_serve_refuses_an_unmigrated_postgres_schema(backend, database_url, tmp_path) -> None:
    if backend == "sqlite":
        # The embedded default migrates a SQLite file by itself, whatever the command.
        (tmp_path / "fresh.db").touch()  # read-only commands never create one
        fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
        assert _json("db", "current", database_url=fresh, check=False)["upToDate"] is False
        _json("pool", "summary", database_url=fresh)
        assert _json("db", "current", database_url=fresh)["upToDate"] is True
        return
    cli("db", "upgrade", database_url=database_url)
    import asyncio

    from pool.kit.db import Database
    from pool.kit.migrate import downgrade

    async def to_base() -> None:
        db = Database(database_url, pool_size=1)
        await downgrade(db, "base")
        await db.dispose()

    asyncio.run(to_base())
    try:
        result = cli("serve", "--port", "1", database_url=database_url, check=False)
        assert result.returncode == 2 and "addrpool db upgrade" in result.stderr
    finally:
        cli("db", "upgrade", database_url=database_url)


def test_import_from_stdin_as_json_and_secrets_refused(database_url, tmp_path) -> None:
    evm = random_addresses("evm", 2)
    payload = json.dumps([evm[0], {"address": evm[1], "derivationIndex": 1}])
    env = {**os.environ, "ADDRPOOL_DATABASE_URL": database_url}
    result = run_cli(
        ["import", "-", "--protocol", "evm", "--json"], stdin=payload, env=env, check=True
    )
    assert json.loads(result.stdout)["imported"] == 2
    secret_file = tmp_path / "keys.csv"
    secret = "f" * 64
    secret_file.write_text(f"address,derivation_index\n{evm[0]},0\n0x{secret},1\n")
    refused = cli(
        "import", str(secret_file), "--protocol", "evm", database_url=database_url, check=False
    )
    assert refused.returncode == 2 and "never takes private keys" in refused.stderr
    assert secret not in refused.stderr + refused.stdout


def test_progress_bar_writes_to_stderr_only_when_enabled(capsys) -> None:
    from scripts.cli.output import ProgressBar

    ProgressBar(enabled=False).update("written", 50_000, 100_000)
    bar = ProgressBar(enabled=True)
    bar.update("written", 50_000, 100_000)
    bar.finish()
    captured = capsys.readouterr()
    assert captured.out == "" and "written 50,000 of 100,000 rows [" in captured.err


def test_progress_bar_shows_rows_rate_and_time_left() -> None:
    import io

    from scripts.cli.output import ProgressBar

    now = [100.0]
    screen = io.StringIO()
    bar = ProgressBar(enabled=True, stream=screen, clock=lambda: now[0])
    bar.expect("validated", 40_000)
    for done in (10_000, 20_000, 30_000, 40_000):
        now[0] += 1.0
        bar.update("validated", done, 0)  # total unknown: the estimate stands in
        bar.update("validated", done, 0)  # again at once: not redrawn
    now[0] += 2.0
    bar.update("written", 20_000, 40_000)  # the phase began when validation last reported
    now[0] += 0.01
    bar.update("written", 21_000, 40_000)  # too soon to redraw
    bar.update("written", 40_000, 40_000)  # the end of a phase is always drawn
    bar.finish()
    lines = [line.split("\r")[-1].rstrip() for line in screen.getvalue().split("\n")]
    assert screen.getvalue().count("\r") == 6
    assert lines[0] == (
        "validated 40,000 of 40,000 rows [########################] 100%  10,000 rows/s  ETA 0:00"
    )
    assert lines[1].startswith("written 40,000 of 40,000 rows [") and "19,900 rows/s" in lines[1]
    assert "validated 10,000 of 40,000 rows [######------------------]  25%" in screen.getvalue()
    assert "10,000 rows/s  ETA 0:03" in screen.getvalue()
    assert (
        "written 20,000 of 40,000 rows [############------------]  50%  10,000 rows/s  ETA 0:02"
        in screen.getvalue()
    )
    derived = io.StringIO()
    unknown = ProgressBar(enabled=True, stream=derived, clock=lambda: now[0])
    now[0] += 4.0
    unknown.update("scanned", 8_000, 0)
    assert derived.getvalue() == "\rscanned 8,000 rows  2,000 rows/s"


def test_a_note_gets_a_line_of_its_own_bar_or_not() -> None:
    """`waiting for another import …`: the bar's line ends first, and the next report starts a
    new one; without a bar (a pipe, `--json`) the note is still said."""
    import io

    from scripts.cli.output import ProgressBar

    screen = io.StringIO()
    bar = ProgressBar(enabled=True, stream=screen, clock=lambda: 100.0)
    bar.update("validated", 10, 20)
    bar.note("waiting for another import into this database to finish")
    bar.update("validated", 20, 20)
    lines = screen.getvalue().split("\n")
    assert lines[1] == "waiting for another import into this database to finish"
    assert lines[0].startswith("\rvalidated 10 of 20") and lines[2].startswith("\rvalidated 20")
    quiet = io.StringIO()
    ProgressBar(enabled=False, stream=quiet).note("waiting")
    assert quiet.getvalue() == "waiting\n"


def test_no_progress_bar_off_a_terminal(database_url, tmp_path) -> None:
    source = tmp_path / "addresses.txt"
    source.write_text("\n".join(random_addresses("evm", 25_000)) + "\n")
    done = cli("import", str(source), "--protocol", "evm", database_url=database_url)
    assert done.stderr == "" and "imported 25000 evm" in done.stdout


def test_a_setting_that_cannot_work_is_one_line_not_a_traceback(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    env |= {
        "ADDRPOOL_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
        "ADDRPOOL_UPSTREAM_URL": "https://testnet.payin.com/api/v1/deposits/bind",
    }
    refused = cli_in(env, "keys", "list", expect=2)
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: invalid configuration: upstream_url: ")
    assert "https://testnet.payin.com/api/v1" in line  # what to give instead


def _network_env(database_url: str, network: str) -> dict[str, str]:
    return {**os.environ, "ADDRPOOL_DATABASE_URL": database_url, "ADDRPOOL_NETWORK": network}


def _other_network(belongs_to: str, running: str) -> str:
    return (
        f"belongs to {belongs_to} (ADDRPOOL_NETWORK={running} here): "
        f"run with ADDRPOOL_NETWORK={belongs_to} or use another database"
    )


def _refused_in_one_line(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, out + err
    assert out == "" and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith("error: the database at ") and message in line, line


def _refused_process(done: subprocess.CompletedProcess[str], message: str) -> None:
    _refused_in_one_line(done.returncode, done.stdout, done.stderr, message)


@pytest.fixture
def addrpool(database_url):
    """`addrpool ARGS` in this process on `database_url`, as a process of `network`:
    (exit status, stdout, stderr)."""

    def run(network: str, *args: str) -> tuple[int, str, str]:
        done = run_cli(args, env=_network_env(database_url, network))
        return done.returncode, done.stdout, done.stderr

    return run


def _put_key(database_url: str, prefix: str) -> str:
    """A key written straight into the database, as one made before the network was recorded."""

    async def put() -> str:
        db = Database(database_url, pool_size=1)
        try:
            return await make_key(db, scopes=None, prefix=prefix)
        finally:
            await db.dispose()

    return asyncio.run(put())


def test_commands_of_the_other_network_are_refused_and_write_nothing(
    database_url, addrpool, tmp_path
) -> None:
    mismatch = _other_network("testnet", "mainnet")
    assert addrpool("testnet", "keys", "create", "--name", "first")[0] == 0  # records testnet
    # The real command, as an operator runs it: one line, exit 2, no key made.
    mainnet = _network_env(database_url, "mainnet")
    _refused_process(cli_in(mainnet, "keys", "create", "--name", "live", expect=2), mismatch)
    # `addrpool worker` would run until stopped: refused, it exits at once.
    worker = run_cli(["worker"], env=mainnet)
    _refused_process(worker, mismatch)
    addresses = tmp_path / "evm.txt"
    addresses.write_text("\n".join(random_addresses("evm", 2)) + "\n")
    for args in (
        ("db", "upgrade"),
        ("import", str(addresses), "--protocol", "evm"),
        ("pool", "summary"),
        ("keys", "list"),
        ("keys", "revoke", "first"),
    ):
        _refused_in_one_line(*addrpool("mainnet", *args), mismatch)
    code, out, _ = addrpool("mainnet", "keys", "create", "--name", "x", "--json")
    assert code == 2 and json.loads(out)["code"] == "DATABASE_NETWORK_MISMATCH"
    code, out, _ = addrpool("testnet", "keys", "list", "--json")
    assert [(key["name"], key["revokedAt"]) for key in json.loads(out)] == [("first", None)]
    code, out, _ = addrpool("testnet", "pool", "summary", "--json")
    assert json.loads(out)["evm"]["total"] == 0


def test_a_migration_or_an_import_does_not_decide_the_network(
    database_url, addrpool, tmp_path
) -> None:
    """Run with the default network, they only check: the first process that serves or makes
    a key records the database's network."""
    addresses = tmp_path / "evm.txt"
    addresses.write_text("\n".join(random_addresses("evm", 2)) + "\n")
    assert addrpool("testnet", "db", "upgrade")[0] == 0
    assert addrpool("testnet", "import", str(addresses), "--protocol", "evm")[0] == 0
    code, out, _ = addrpool("mainnet", "keys", "create", "--name", "live", "--json")
    assert code == 0 and json.loads(out)["key"].startswith("pk_live_")
    code, out, err = addrpool("testnet", "pool", "summary")
    _refused_in_one_line(code, out, err, _other_network("mainnet", "testnet"))


def test_a_database_holding_live_keys_is_not_claimed_by_a_testnet_command(
    database_url, addrpool
) -> None:
    """As a mainnet database from before the network was recorded: its keys tell."""
    _put_key(database_url, "pk_live_")
    refused = cli_in(
        _network_env(database_url, "testnet"), "keys", "create", "--name", "x", expect=2
    )
    _refused_process(
        refused, "belongs to mainnet, as its pk_live_ API keys show (ADDRPOOL_NETWORK=testnet here)"
    )
    code, out, _ = addrpool("mainnet", "keys", "create", "--name", "live", "--json")
    assert code == 0 and json.loads(out)["key"].startswith("pk_live_")


def test_keys_of_both_networks_are_sorted_out_by_revoking_one_side(database_url, addrpool) -> None:
    live = _put_key(database_url, "pk_live_")
    _put_key(database_url, "pk_test_")
    code, out, err = addrpool("testnet", "pool", "summary")
    _refused_in_one_line(code, out, err, "holds active API keys of both networks")
    assert "addrpool keys revoke" in err
    code, out, _ = addrpool("testnet", "keys", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 2
    assert addrpool("testnet", "keys", "revoke", live[:12])[0] == 0
    assert addrpool("testnet", "pool", "summary")[0] == 0  # its keys now say testnet
    told = "belongs to testnet, as its pk_test_ API keys show (ADDRPOOL_NETWORK=mainnet here)"
    _refused_in_one_line(*addrpool("mainnet", "pool", "summary"), told)
    assert addrpool("testnet", "keys", "create", "--name", "next")[0] == 0  # records testnet
    _refused_in_one_line(*addrpool("mainnet", "keys", "list"), _other_network("testnet", "mainnet"))


KEY = "4d" * 32
PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WORDS = PHRASE.split()


def test_import_refuses_a_secret_in_any_column_without_echoing_it(database_url, tmp_path) -> None:
    evm = random_addresses("evm", 2)
    source = tmp_path / "five-columns.csv"
    source.write_text(f"{evm[0]},0,evm,,\n{evm[1]},1,evm,,{KEY}\n")
    args = ("import", str(source), "--protocol", "evm", "--skip-invalid")
    human = cli(*args, database_url=database_url, check=False)
    assert human.returncode == 2 and "never takes private keys" in human.stderr
    assert "line 2: '[redacted]'" in human.stderr
    as_json = cli(*args, "--json", database_url=database_url, check=False)
    error = json.loads(as_json.stdout)
    assert error["code"] == "PRIVATE_KEY_REFUSED" and error["detailsCount"] == 1
    assert error["details"] == [
        {"line": 2, "value": "[redacted]", "message": error["details"][0]["message"],
         "kind": "raw_private_key"}
    ]  # fmt: skip
    for result in (human, as_json):
        assert KEY not in result.stdout + result.stderr
    assert _json("pool", "summary", database_url=database_url)["evm"]["total"] == 0


def test_import_from_stdin_refuses_a_mnemonic_one_word_per_line(database_url) -> None:
    env = {**os.environ, "ADDRPOOL_DATABASE_URL": database_url}
    result = run_cli(["import", "-", "--protocol", "evm"], stdin="\n".join(WORDS) + "\n", env=env)
    assert result.returncode == 2 and "BIP39 mnemonic" in result.stderr
    assert "winner" not in result.stdout + result.stderr


def test_import_reports_the_first_20_bad_lines_and_counts_the_rest(database_url, tmp_path) -> None:
    source = tmp_path / "bad.txt"
    source.write_text("".join(f"not-an-address-{n}\n" for n in range(300)))
    args = ("import", str(source), "--protocol", "tron")
    human = cli(*args, database_url=database_url, check=False)
    assert human.returncode == 2 and human.stderr.count("\n  line ") == 20
    assert "280 more not listed (300 in all; invalid_address: 300)" in human.stderr
    assert "look like" not in human.stderr  # they are nobody's addresses
    error = json.loads(cli(*args, "--json", database_url=database_url, check=False).stdout)
    assert (len(error["details"]), error["detailsCount"]) == (20, 300)
    report = _json(*args, "--skip-invalid", "--dry-run", database_url=database_url)
    assert (len(report["invalid"]), report["invalidCount"]) == (20, 300)
    text = cli(*args, "--skip-invalid", "--dry-run", database_url=database_url).stdout
    assert text.count("\n  line ") == 20 and "280 more not listed" in text


@pytest.mark.parametrize(
    ("written", "chosen", "label"), [("evm", "tron", "EVM"), ("tron", "evm", "Tron")]
)
def test_an_import_with_the_wrong_protocol_suggests_the_other(
    database_url, tmp_path, written, chosen, label
) -> None:
    source = tmp_path / "addresses.txt"
    good = random_addresses(written, 1_000)
    source.write_text("\n".join(["not-an-address", *good]) + "\n")
    args = ("import", str(source), "--protocol", chosen)
    hint = f"these look like {label} addresses: --protocol {written}?"
    human = cli(*args, database_url=database_url, check=False)
    assert human.returncode == 2 and human.stderr.count("\n  line ") == 20
    assert human.stderr.splitlines()[0].endswith(
        f"nothing was imported; the first are listed; {hint}"
    )
    as_json = cli(*args, "--json", database_url=database_url, check=False).stdout
    assert len(as_json) < 8_000  # 1,001 bad rows: 20 listed, the rest counted
    assert json.loads(as_json)["detailsCount"] == 1_001
    assert hint in cli(*args, "--skip-invalid", "--dry-run", database_url=database_url).stdout


def test_the_installed_command_starts_and_shows_its_help() -> None:
    """The one real `addrpool` process among the command tests: the entry point installed
    beside this interpreter (the others call `main(argv)` in this process: tests/fixtures/cli.py)."""
    import sys
    from pathlib import Path

    installed = Path(sys.executable).parent / "addrpool"
    done = subprocess.run(
        [str(installed), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.startswith("usage: addrpool") and "keys" in done.stdout


def test_light_commands_run_as_real_processes_without_noise(tmp_path) -> None:
    """In a fresh process each command imports only what it needs (scripts/cli/main.py imports
    a command's module when it runs): a missing import shows here, not in-process."""
    import sys
    from pathlib import Path

    installed = Path(sys.executable).parent / "addrpool"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    env["ADDRPOOL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'light.db'}"
    for argv in (["db", "upgrade"], ["keys", "list"], ["pool", "summary"], ["alerts", "list"]):
        done = subprocess.run(
            [str(installed), *argv, "--json"], capture_output=True, text=True, env=env, timeout=60
        )
        assert (done.returncode, done.stderr) == (0, ""), (argv, done.stderr)
        json.loads(done.stdout)
