"""`addrpool chains` and `addrpool rescan`: the watcher's state, and a safe re-read of a range."""

from __future__ import annotations

import argparse
from typing import Any

from chains.known_chains import PRESETS
from chains.presets import configured_chains, resolve_chain
from pool.chain_state.repository import Cursor, endpoint_notes, endpoint_tracers, load_cursors
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import load_settings
from pool.kit.errors import ValidationFailed
from scripts.cli.database import opened_database
from scripts.cli.output import Output, table


async def chains_list(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    chains = configured_chains(settings)
    async with opened_database(settings, existing=True) as db, db.read() as conn:
        cursors = {c.chain_id: c for c in await load_cursors(conn)}
    data = {c.chain_id: _chain_view(c.watched, cursors.get(c.chain_id)) for c in chains}
    rows = [
        [chain_id, "yes" if v["watched"] else "no", *(_cell(v[k]) for k in _COLUMNS)]
        for chain_id, v in data.items()
    ]
    lines = [note for v in data.values() for note in endpoint_notes(v["endpoints"] or [])]
    lines += [line for k, v in data.items() for line in endpoint_tracers(k, v["endpoints"] or [])]
    text = table(rows, ["chain", "watched", *_COLUMNS]) if rows else "no chain configured"
    out.result(data, "\n".join([text, *lines]))
    return 0


_COLUMNS = ("head", "cursor", "lag", "endpoint", "endpoints")


def _chain_view(watched: bool, cursor: Cursor | None) -> dict[str, Any]:
    if cursor is None:
        return {"watched": watched, **dict.fromkeys(_COLUMNS)}
    head = cursor.head if cursor.head is not None else cursor.block_number
    endpoints = cursor.endpoints_at(utc_now())
    return {
        "watched": watched,
        "head": head,
        "cursor": cursor.block_number,
        "lag": max(0, head - cursor.block_number),
        "endpoint": cursor.endpoint,
        "endpoints": endpoints,
        "headSeenAt": isoformat_z(cursor.head_at) if cursor.head_at else None,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):  # endpoint health: "2 ok, 1 set aside"
        ok = sum(1 for e in value if e.get("state") == "ok")
        return f"{ok} ok, {len(value) - ok} set aside" if value else "-"
    return str(value)


async def rescan(args: argparse.Namespace, out: Output) -> int:
    # web3 is a second to import: only the commands that talk to a chain pay for it.
    from chains.endpoints import EndpointPool
    from chains.watch.rescan import rescan as rescan_range

    settings = load_settings()
    if args.chain not in settings.chains and args.chain not in PRESETS:
        raise ValidationFailed(
            f"no chain {args.chain!r} is configured; configured chains: "
            f"{', '.join(sorted(settings.chains)) or 'none'} (`addrpool chains` lists them)"
        )
    chain = resolve_chain(args.chain, settings)
    if not chain.watched:
        raise ValidationFailed(f"{args.chain} is not watched (no RPC URL or no token)")
    async with opened_database(settings) as db, EndpointPool.for_chain(chain) as endpoints:
        report = await rescan_range(
            chain, db, endpoints, from_block=args.from_block, to_block=args.to_block
        )
        health = endpoints.view()
    coin = chain.native.symbol if chain.native is not None else None
    data = {
        "chainId": report.chain_id,
        "fromBlock": report.from_block,
        "toBlock": report.to_block,
        "logs": report.logs,
        "transfersToPool": report.transfers,
        # The chain's coin, when watched: its share of the transfers, and how it was read.
        "native": None
        if coin is None
        else {"currency": coin, "transfersToPool": report.coins, "tracer": report.tracer},
        "recorded": report.recorded,
        "reopened": report.reopened,
        "endpoints": health,
    }
    out.result(data, _rescan_text(data))
    return 0


_COIN_READ = {
    "debug": "top-level and internal, with the call tracer",
    "trace": "top-level and internal, with trace_block",
    "none": "top-level only: no trace API",
}


def _rescan_text(data: dict[str, Any]) -> str:
    from chains.endpoints import trouble

    coin = data["native"]
    read = f"{data['logs']} token logs"
    to_pool = f"{data['transfersToPool']} to pool addresses"
    if coin is not None:
        read += f" and the blocks' {coin['currency']} transfers ({_COIN_READ[coin['tracer']]})"
        to_pool += f" ({coin['transfersToPool']} of {coin['currency']})"
    lines = [
        f"{data['chainId']}: blocks {data['fromBlock']}-{data['toBlock']} rescanned; "
        f"{read} read, {to_pool}, "
        f"{data['recorded']} new deposits recorded, {data['reopened']} reopened"
    ]
    lines += [f"  set aside: {trouble(e)}" for e in data["endpoints"] if e["state"] != "ok"]
    return "\n".join(lines)
