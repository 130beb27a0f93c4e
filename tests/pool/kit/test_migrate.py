"""`new_revision`: the next numbered migration file, revising the current head."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from pool.kit.errors import ConfigurationError, ValidationFailed
from pool.kit.migrate import MIGRATIONS, head_revision, new_revision


def checkout_copy(root: Path) -> Path:
    """The migrations folder copied where a source checkout keeps it."""
    (root / "pyproject.toml").write_text("")
    copy = root / "pool" / "kit" / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return checkout_copy(tmp_path)


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


def test_the_new_file_passes_the_linter(migrations: Path) -> None:
    path = new_revision("Nothing yet", script_location=migrations)
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "F,E,I", str(path)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout


def test_an_installed_copy_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "site-packages" / "pool" / "kit" / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.raises(ConfigurationError, match="not in a source checkout"):
        new_revision("Add a column", script_location=copy)
    assert _head(copy) == head_revision()


def test_two_heads_are_refused_in_one_line(migrations: Path) -> None:
    head = head_revision()
    twin = migrations / "versions" / "9999_twin.py"
    twin.write_text(
        f'revision = "9999"\ndown_revision = "{int(head) - 1:04d}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    with pytest.raises(ConfigurationError, match="cannot write the next revision"):
        new_revision("Add a column", script_location=migrations)
