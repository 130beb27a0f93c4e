"""`addrpool import --xpub` and `addrpool pool verify` against a real database."""

import json
from pathlib import Path

from chains.hd import derive_addresses, parse_extended_public_key
from pool.vocabulary import ParsedAddress, Protocol
from tests.chains.test_hd import V1_M_0H
from tests.fixtures.helpers import random_addresses
from tests.fixtures.server import cli


def _json(*args: str, database_url: str, check: bool = True) -> dict:
    result = cli(*args, "--json", database_url=database_url, check=check)
    return json.loads(result.stdout)


def _two_row_csv(
    tmp_path: Path,
    protocol: Protocol,
    *,
    start: int,
    second_index: int | None = None,
    second_key: str | None = None,
) -> tuple[Path, ParsedAddress]:
    """A CSV of V1_M_0H's addresses at `start` and `start + 1`, each with its index and master key; the
    second row may be given a wrong index or a wrong key instead. Returns the file and the second address."""
    account = parse_extended_public_key(V1_M_0H)
    (_, first), (_, second) = derive_addresses(
        account, protocol=protocol, branch=0, start=start, count=2
    )
    key = account.serialize()
    index = start + 1 if second_index is None else second_index
    csv = tmp_path / f"{protocol}.csv"
    csv.write_text(
        "address,derivation_index,protocol,master_public_key\n"
        f"{first.text},{start},{protocol},{key}\n"
        f"{second.text},{index},{protocol},{second_key or key}\n"
    )
    return csv, second


def test_import_from_xpub_is_idempotent_and_verifies(database_url, tmp_path) -> None:
    first = _json(
        "import", "--xpub", V1_M_0H, "--protocol", "evm", "--count", "5", database_url=database_url
    )
    assert first["imported"] == 5 and first["fingerprint"]
    again = _json(
        "import", "--xpub", V1_M_0H, "--protocol", "evm", "--count", "5", database_url=database_url
    )
    assert (again["imported"], again["alreadyInPool"]) == (0, 5)
    verified = _json(
        "pool", "verify", "--xpub", V1_M_0H, "--protocol", "evm", database_url=database_url
    )
    assert (verified["verified"], verified["ok"]) == (5, True)

    # An address from elsewhere, without an index: searched for, not found, exit code 1.
    stranger = tmp_path / "stranger.txt"
    stranger.write_text(random_addresses("evm", 1)[0] + "\n")
    cli("import", str(stranger), "--protocol", "evm", database_url=database_url)
    result = cli("pool", "verify", "--xpub", V1_M_0H, "--protocol", "evm", "--bound", "50", "--json",
                 database_url=database_url, check=False)  # fmt: skip
    report = json.loads(result.stdout)
    assert result.returncode == 1 and len(report["notDerivable"]) == 1 and report["verified"] == 5


def test_csv_rows_with_a_wrong_index_are_mismatched(database_url, tmp_path) -> None:
    csv, at_4 = _two_row_csv(tmp_path, "tron", start=3, second_index=9)
    cli("import", str(csv), "--protocol", "tron", database_url=database_url)
    result = cli("pool", "verify", "--xpub", V1_M_0H, "--protocol", "tron", "--json",
                 database_url=database_url, check=False)  # fmt: skip
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["verified"] == 1
    assert report["mismatched"] == [
        {"address": at_4.text, "index": 9, "derives": report["mismatched"][0]["derives"]}
    ]


def test_xprv_is_refused_and_not_echoed(database_url) -> None:
    xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
    result = cli(
        "import",
        "--xpub",
        xprv,
        "--protocol",
        "evm",
        "--count",
        "1",
        database_url=database_url,
        check=False,
    )
    assert result.returncode == 2 and "never takes private keys" in result.stderr
    assert xprv not in result.stderr + result.stdout


def test_import_verify_checks_rows_against_their_key(database_url, tmp_path) -> None:
    csv, _ = _two_row_csv(tmp_path, "evm", start=0, second_index=7)
    refused = cli(
        "import", str(csv), "--protocol", "evm", "--verify", database_url=database_url, check=False
    )
    assert refused.returncode == 2 and "line 3" in refused.stderr and "derives" in refused.stderr
    partial = _json(
        "import",
        str(csv),
        "--protocol",
        "evm",
        "--verify",
        "--skip-invalid",
        database_url=database_url,
    )
    assert partial["imported"] == 1 and partial["invalid"][0]["line"] == 3


def test_a_row_with_a_broken_master_key_is_a_row_problem(database_url, tmp_path) -> None:
    broken = V1_M_0H[:-4] + "abcd"  # right shape, wrong checksum
    csv, _ = _two_row_csv(tmp_path, "evm", start=0, second_key=broken)
    result = _json(
        "import", str(csv), "--protocol", "evm", "--skip-invalid", database_url=database_url
    )
    assert result["imported"] == 1 and result["invalid"][0]["line"] == 3
    assert "master_public_key" in result["invalid"][0]["message"]
    verified = _json(
        "pool", "verify", "--xpub", V1_M_0H, "--protocol", "evm", database_url=database_url
    )
    assert verified["verified"] == 1 and verified["ok"] is True
