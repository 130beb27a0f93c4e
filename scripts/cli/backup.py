"""`addrpool db backup DEST`: an online copy of the SQLite database and its key file."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from pool.kit.backup import backup_database
from pool.kit.config import load_settings
from scripts.cli.output import Output


async def db_backup(args: argparse.Namespace, out: Output) -> int:
    made = await asyncio.to_thread(backup_database, load_settings(), Path(args.destination))
    if made.key_file is not None:
        key = f"key file {made.key_file} (keep the two together)"
    elif made.key_from_environment:
        key = "no key file: ADDRPOOL_SECRET_KEY is set; keep it with the backup"
    else:
        key = "no key file yet: no webhook secret has been stored"
    out.result(
        {
            "source": str(made.source),
            "destination": str(made.destination),
            "bytes": made.size_bytes,
            "seconds": round(made.seconds, 3),
            "keyFile": str(made.key_file) if made.key_file else None,
            "keyFromEnvironment": made.key_from_environment,
        },
        f"backed up {made.source} to {made.destination} "
        f"({made.size_bytes / 1e6:.1f} MB in {made.seconds:.1f} s); {key}",
    )
    return 0
