"""`addrpool pool recount [--repair]`: the kept counts against a full count of the table.

Exits 1 when they differ and nothing was repaired. `--repair` rebuilds them in one write
transaction (on PostgreSQL binds wait for it: about a second a million addresses)."""

from __future__ import annotations

import argparse

from pool.addresses.counts import full_count_mismatches, recount
from pool.kit.config import load_settings
from scripts.cli.database import opened_database
from scripts.cli.output import Output, table


async def pool_recount(args: argparse.Namespace, out: Output) -> int:
    left = None
    async with opened_database(load_settings(), existing=True) as db:
        async with db.read() as conn:
            mismatches = await full_count_mismatches(conn)
        if mismatches and args.repair:
            async with db.write() as conn:
                await recount(conn)
                left = await full_count_mismatches(conn)
    data = {
        "mismatches": [
            {"protocol": m.protocol, "status": m.status, "kept": m.kept, "counted": m.counted}
            for m in mismatches
        ],
        "repaired": bool(mismatches and left == []),
    }
    if not mismatches:
        out.result(data, "the kept counts equal a full count")
        return 0
    rows = [[m.protocol, m.status, str(m.kept), str(m.counted)] for m in mismatches]
    text = table(rows, ["protocol", "status", "kept", "counted"])
    text += "\nrepaired" if data["repaired"] else "\nnot repaired (--repair rebuilds them)"
    out.result(data, text)
    return 0 if data["repaired"] else 1
