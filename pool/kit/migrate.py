"""Run the Alembic migrations programmatically on SQLite or PostgreSQL, and write the next one.

Revisions are numbered, not hashed: `0014_chain_leadership.py` has revision "0014" and revises
"0013", so the order is the file order and a second head is visible at a glance. The workflow
is in docs/development.md ("Writing a migration").
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from pool.kit.db import Database
from pool.kit.errors import ConfigurationError, ValidationFailed

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(
    connection: Connection | None = None, *, script_location: Path = MIGRATIONS
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    async with db.write() as conn:
        await conn.run_sync(run)


async def downgrade(db: Database, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.downgrade(_alembic_config(connection), revision)

    async with db.write() as conn:
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.read() as conn:
        return await conn.run_sync(read)


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return head


def new_revision(message: str, *, script_location: Path | None = None) -> Path:
    """Write the next revision file (`<number>_<slug>.py`, revising the current head) from the
    template `script.py.mako`, with empty upgrade and downgrade to fill in; its path."""
    if not message.strip():
        raise ValidationFailed("a revision needs a message: what it changes")
    location = script_location or MIGRATIONS
    if not (location.parents[2] / "pyproject.toml").is_file():
        # An installed copy: a revision written there would be lost with the next install.
        raise ConfigurationError(f"{location} is not in a source checkout: run it from one")
    config = _alembic_config(script_location=location)
    config.cmd_opts = Namespace(quiet=True)  # the caller says what was written (or --json)
    try:
        head = ScriptDirectory.from_config(config).get_current_head()
    except CommandError as error:  # several heads: someone must merge them first
        raise ConfigurationError(f"cannot write the next revision: {error}") from error
    number = _revision_number(head) + 1
    script = command.revision(config, message=message.strip(), rev_id=f"{number:04d}")
    if script is None or isinstance(script, list):  # pragma: no cover - one plain revision
        raise RuntimeError("alembic wrote no single revision")
    return Path(script.path)


def _revision_number(head: str | None) -> int:
    if head is None:
        return 0
    if not head.isdigit():
        raise ValidationFailed(f"the head revision {head!r} is not numbered")
    return int(head)
