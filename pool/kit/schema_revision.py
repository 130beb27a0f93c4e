"""Is the schema at the newest revision? Answered without importing Alembic.

Alembic's import (its operations, every dialect's DDL, autogenerate, Mako) is most of what a
short command such as `addrpool keys list` would spend before doing anything, and at the
newest revision there is nothing for it to do. So the common case reads the revision table and
the migration files' `revision`/`down_revision` lines; anything unusual (a branch, a merge, a
file it cannot read) answers "not known", and the caller asks Alembic (`pool.kit.migrate`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from pool.kit.db import Database

VERSIONS = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default; migrations/env.py keeps it
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def newest_revision(versions: Path = VERSIONS) -> str | None:
    """The one head of a straight chain of revisions; None when the chain is anything else."""
    parents: dict[str, object] = {}
    for path in versions.glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            parents[revision] = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
    if not all(isinstance(p, str | None) for p in parents.values()):
        return None  # a merge revision names a tuple of parents
    heads = set(parents) - set(parents.values())
    return heads.pop() if len(heads) == 1 else None


async def at_newest_revision(db: Database) -> bool:
    """True only when the database's one stored revision is the newest; False when unsure."""
    newest = newest_revision()
    if newest is None:
        return False

    def stored(connection: Connection) -> list[str]:
        if not inspect(connection).has_table(VERSION_TABLE):
            return []
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
        return [row[0] for row in rows]

    async with db.read() as conn:
        return await conn.run_sync(stored) == [newest]
