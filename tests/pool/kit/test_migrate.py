"""`new_revision`: the next numbered migration file, revising the current head."""

import importlib.util
import shutil
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from pool.kit.errors import ValidationFailed
from pool.kit.migrate import MIGRATIONS, head_revision, new_revision


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _head(script_location: Path) -> str | None:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return ScriptDirectory.from_config(config).get_current_head()


def test_the_next_revision_is_numbered_after_the_head_and_revises_it(migrations: Path) -> None:
    head = head_revision()
    number = f"{int(head) + 1:04d}"
    path = new_revision("Index deposits by sender", script_location=migrations)
    assert path.parent == migrations / "versions"
    assert path.name == f"{number}_index_deposits_by_sender.py"
    spec = importlib.util.spec_from_file_location("revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (module.revision, module.down_revision) == (number, head)
    assert callable(module.upgrade) and callable(module.downgrade)
    assert module.__doc__.startswith("Index deposits by sender\n")
    assert _head(migrations) == number  # one head still: the chain goes on from the new file
    again = new_revision("and another", script_location=migrations)
    assert again.name == f"{int(number) + 1:04d}_and_another.py"


def test_a_revision_needs_a_message(migrations: Path) -> None:
    with pytest.raises(ValidationFailed):
        new_revision("  ", script_location=migrations)
    assert _head(migrations) == head_revision()
