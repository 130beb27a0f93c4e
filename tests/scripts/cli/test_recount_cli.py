"""`addrpool pool recount [--repair]`: the kept counts against a full count, from a shell."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.fixtures.server import cli_in
from tests.scripts.run.test_worker_cli import worker_env


def test_recount_reports_a_corrupted_count_and_repairs_it(tmp_path: Path) -> None:
    env = worker_env(tmp_path, "")
    addresses = tmp_path / "addresses.txt"
    addresses.write_text("\n".join(f"0x{n:040x}" for n in range(1, 5)) + "\n")
    cli_in(env, "import", str(addresses), "--protocol", "evm")
    clean = json.loads(cli_in(env, "pool", "recount", "--json").stdout)
    assert clean == {"mismatches": [], "repaired": False}

    with sqlite3.connect(tmp_path / "w.db") as db:  # counts gone wrong
        db.execute("UPDATE address_count SET n = n + 5 WHERE status = 'available'")
        db.execute("INSERT INTO status_count VALUES ('delivery', '', 'failed', 0, 3)")
    found = cli_in(env, "pool", "recount", expect=1).stdout
    assert "evm" in found and "9" in found and "not repaired" in found
    assert "delivery" in found and "failed" in found
    assert json.loads(cli_in(env, "pool", "summary", "--json").stdout)["evm"]["available"] == 9

    repaired = json.loads(cli_in(env, "pool", "recount", "--repair", "--json").stdout)
    assert repaired == {
        "mismatches": [
            {"protocol": "evm", "status": "available", "kept": 9, "counted": 4},
            {"subject": "delivery", "status": "failed", "kept": 3, "counted": 0},
        ],
        "repaired": True,
    }
    assert json.loads(cli_in(env, "pool", "summary", "--json").stdout)["evm"]["available"] == 4
    cli_in(env, "pool", "recount")
