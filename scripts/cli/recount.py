"""`addrpool pool recount [--repair]`: the kept counts against a full count of their tables —
the pool's by protocol and status, and deposits (by chain), deliveries and orders by status.

Exits 1 when they differ and nothing was repaired. `--repair` rebuilds them in one write
transaction (on PostgreSQL writes to the counted tables wait for it: about a second a million
rows)."""

from __future__ import annotations

import argparse
from typing import Any

from pool.addresses import counts
from pool.kit.config import load_settings
from pool.kit.db import Database
from pool.monitoring import status_counts
from scripts.cli.database import opened_database
from scripts.cli.output import Output, table


async def pool_recount(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db:
        found = await _mismatches(db)
        left = None
        if found and args.repair:
            async with db.write() as conn:
                await counts.recount(conn)
                await status_counts.recount(conn)
            left = await _mismatches(db)
    data = {"mismatches": [row for row, _ in found], "repaired": bool(found and left == [])}
    if not found:
        out.result(data, "the kept counts equal a full count")
        return 0
    text = table([shown for _, shown in found], ["counts", "status", "kept", "counted"])
    text += "\nrepaired" if data["repaired"] else "\nnot repaired (--repair rebuilds them)"
    out.result(data, text)
    return 0 if data["repaired"] else 1


Mismatch = tuple[dict[str, Any], list[str]]  # (the JSON row, the table's row)


async def _mismatches(db: Database) -> list[Mismatch]:
    """The pool's (by protocol) then deposits', deliveries' and orders' (by subject)."""
    async with db.read() as conn:
        pool = await counts.full_count_mismatches(conn)
        statuses = await status_counts.full_count_mismatches(conn)
    found: list[Mismatch] = [
        (
            {"protocol": m.protocol, "status": m.status, "kept": m.kept, "counted": m.counted},
            [m.protocol, m.status, str(m.kept), str(m.counted)],
        )
        for m in pool
    ]
    for s in statuses:
        row = {"subject": s.subject, "status": s.status, "kept": s.kept, "counted": s.counted}
        if s.label:
            row["chain"] = s.label
        counted = f"{s.subject} {s.label}".strip()
        found.append((row, [counted, s.status, str(s.kept), str(s.counted)]))
    return found
