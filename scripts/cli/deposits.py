"""`addrpool deposits list|show` and `addrpool references show`: the ledger without curl.

`--json` prints exactly the `data` of the matching API answer (GET /api/v1/deposits,
/deposits/{id}, /deposits/references/{ref}): the same payload functions build both.
"""

from __future__ import annotations

import argparse
from typing import Any

from chains.presets import monitored_chains
from pool.bindings.payloads import reference_payload
from pool.bindings.references import get_reference
from pool.deposits.payloads import deposit_payload
from pool.deposits.repository import DepositFilters, list_deposits
from pool.kit.config import load_settings
from pool.kit.errors import NotFound
from pool.kit.paging import pagination
from scripts.cli.database import opened_database
from scripts.cli.output import Output, table

_LISTED = ("depositId", "depositReference", "chainId", "currency", "amount", "status")


async def deposits_list(args: argparse.Namespace, out: Output) -> int:
    filters = DepositFilters(args.reference, args.status, args.chain, args.currency, args.address)
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        rows, total = await list_deposits(
            conn, filters=filters, offset=(args.page - 1) * args.limit, limit=args.limit
        )
    data = {
        "deposits": [deposit_payload(r) for r in rows],
        "pagination": pagination(page=args.page, limit=args.limit, total=total),
    }
    out.result(data, _deposits_text(data))
    return 0


def _deposits_text(data: dict[str, Any]) -> str:
    page = data["pagination"]
    if not data["deposits"]:
        return f"no deposits (page {page['page']}; {page['total']:,} in all)"
    rows = [
        [*(_cell(d[k]) for k in _LISTED), f"{d['confirmations']}/{d['requiredConfirmations']}",
         d["detectedAt"]]
        for d in data["deposits"]
    ]  # fmt: skip
    header = ["id", "reference", "chain", "currency", "amount", "status", "conf", "detected"]
    footer = (
        f"page {page['page']} of {max(page['totalPages'], 1)}; {page['total']:,} deposit(s) "
        "(--page, --limit)"
    )
    return f"{table(rows, header)}\n{footer}"


async def deposits_show(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        rows, _ = await list_deposits(
            conn, filters=DepositFilters(deposit_id=args.id), offset=0, limit=1
        )
    if not rows:
        raise NotFound(f"Deposit {args.id} not found", code="DEPOSIT_NOT_FOUND")
    data = deposit_payload(rows[0])
    out.result(data, _fields(data))
    return 0


async def references_show(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    async with opened_database(settings, existing=True) as db, db.read() as conn:
        view = await get_reference(conn, reference=args.reference, protocol=args.protocol)
    watched = monitored_chains(settings).get(view.binding.protocol, [])
    data = reference_payload(view, watched)
    out.result(data, _reference_text(data))
    return 0


def _reference_text(data: dict[str, Any]) -> str:
    summary = {k: v for k, v in data.items() if k not in ("bindings", "totals", "metadata")}
    summary["totals"] = ", ".join(f"{c} {a}" for c, a in data["totals"].items()) or "-"
    summary["metadata"] = data["metadata"]
    history = [
        [b["address"], b["boundAt"], _cell(b["unboundAt"]), _cell(b["cooldownUntil"])]
        for b in data["bindings"]
    ]
    header = ["address", "bound", "unbound", "cooldown until"]
    return f"{_fields(summary)}\n\nbinding history:\n{table(history, header)}"


def _fields(data: dict[str, Any]) -> str:
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in data.items())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)
