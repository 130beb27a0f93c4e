"""`addrpool db revision -m …` writes the next migration file (in-process)."""

import json
from pathlib import Path

import pytest

from pool.kit import migrate
from scripts.cli.main import main
from tests.pool.kit.test_migrate import checkout_copy


def test_db_revision_writes_the_next_numbered_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = checkout_copy(tmp_path)
    monkeypatch.setattr(migrate, "MIGRATIONS", copy)
    number = f"{int(migrate.head_revision()) + 1:04d}"

    assert main(["db", "revision", "-m", "Add order table", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    path = copy / "versions" / f"{number}_add_order_table.py"
    assert answer == {"path": str(path), "revision": number}
    assert f'down_revision = "{int(number) - 1:04d}"' in path.read_text()
