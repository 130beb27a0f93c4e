"""`addrpool db upgrade|current|revision`: the schema's revision."""

from __future__ import annotations

import argparse

from pool.kit.config import load_settings
from pool.kit.db import Database
from pool.kit.migrate import current_revision, head_revision, new_revision, upgrade
from scripts.cli.database import must_exist, of_this_network, reaching
from scripts.cli.output import Output


async def db_upgrade(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        with reaching(db):
            await upgrade(db)
        await of_this_network(db, settings.network, claim=False)
        revision = await current_revision(db)
    finally:
        await db.dispose()
    out.result({"revision": revision}, f"schema at revision {revision}")
    return 0


async def db_current(args: argparse.Namespace, out: Output) -> int:
    db = Database(load_settings().database_url, pool_size=1)
    try:
        must_exist(db)
        with reaching(db):
            revision = await current_revision(db)
    finally:
        await db.dispose()
    head = head_revision()
    out.result(
        {"revision": revision, "head": head, "upToDate": revision == head},
        f"schema at {revision or 'nothing'} (newest: {head})",
    )
    return 0 if revision == head else 1


async def db_revision(args: argparse.Namespace, out: Output) -> int:
    """A developer's command: writes into the source tree (docs/development.md)."""
    path = new_revision(args.message)
    out.result({"path": str(path), "revision": path.name.split("_", 1)[0]}, f"wrote {path}")
    return 0
