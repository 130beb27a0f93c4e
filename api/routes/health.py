"""`GET /health`: PayIn's shape, plus the checks an operator's probe needs."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Response
from sqlalchemy.exc import SQLAlchemyError

from api.answers.operations import HEALTH_ANSWERS
from api.context import AppContext, context
from api.responses import JSON
from pool import __version__
from pool.chain_state.repository import endpoint_notes, load_cursors
from pool.instance import repository as instance_repo
from pool.kit.clock import isoformat_z, utc_now

router = APIRouter(tags=["health"])
log = logging.getLogger("addrpool.health")


@router.get("/health", responses=HEALTH_ANSWERS)
async def health(ctx: Annotated[AppContext, Depends(context)]) -> Response:
    """200 "healthy"; 200 "degraded" when a configured chain is not being watched (binds work,
    deposits on it are not seen), with the reasons in `problems`; 503 "unhealthy" without the
    database."""
    database_ok = await _database_reachable(ctx)
    chains, heard = await _chains(ctx) if database_ok else ({}, {})
    problems = _unwatched_configured_chains(ctx, heard) if database_ok else ["database unreachable"]
    problems += [
        note for chain in chains.values() for note in endpoint_notes(chain.get("endpoints") or [])
    ]
    status = "unhealthy" if not database_ok else "degraded" if problems else "healthy"
    body: dict[str, Any] = {
        "status": status,
        "timestamp": isoformat_z(utc_now()),
        "version": __version__,
        "network": ctx.settings.network,
        "checks": {
            "database": "ok" if database_ok else "unreachable",
            "chains": chains,
        },
        "problems": problems,
        "monitoredChains": ctx.monitored_chains,
    }
    return Response(orjson.dumps(body), status_code=200 if database_ok else 503, media_type=JSON)


def _unwatched_configured_chains(ctx: AppContext, heard: dict[str, datetime]) -> list[str]:
    """Why each chain named in the configuration is not being watched right now.

    A preset the operator never configured is listed under `checks.chains` but is no
    problem. A watched chain is judged by what its watcher last wrote (`serve`'s own watchers,
    or an `addrpool worker` elsewhere): nothing yet, or silence longer than the stall alert's
    `alerts.watcher_stall_after`.
    """
    now = utc_now()
    stall = ctx.settings.alerts.watcher_stall_after
    problems = []
    for chain_id in sorted(ctx.settings.chains):
        if chain_id in ctx.unwatched_chains:
            problems.append(f"chain {chain_id} is not watched: {ctx.unwatched_chains[chain_id]}")
            continue
        last_heard = heard.get(chain_id)
        if last_heard is None:
            problems.append(
                f"chain {chain_id} is not watched yet: no watcher has reported on it "
                "(is `addrpool serve` or `addrpool worker` running?)"
            )
        elif now - last_heard > stall:
            silent = int((now - last_heard).total_seconds())
            problems.append(f"chain {chain_id}: its watcher has been silent for {silent} s")
    return problems


async def _chains(ctx: AppContext) -> tuple[dict[str, Any], dict[str, datetime]]:
    """What the watchers last wrote (never an RPC call inside a request), what is unwatched,
    and when each watcher was last heard from."""
    async with ctx.db.read() as conn:
        cursors = await load_cursors(conn)
    now = utc_now()
    heard: dict[str, datetime] = {}
    chains: dict[str, Any] = {
        chain_id: {"watched": False, "reason": reason}
        for chain_id, reason in ctx.unwatched_chains.items()
    }
    for cursor in cursors:
        head = cursor.head if cursor.head is not None else cursor.block_number
        chains[cursor.chain_id] = {
            "watched": cursor.chain_id not in ctx.unwatched_chains,
            "head": head,
            "cursor": cursor.block_number,
            "lag": max(0, head - cursor.block_number),
            "confirmations": cursor.confirmations,
            "endpoint": cursor.endpoint,
            "endpoints": cursor.endpoints_at(now),
            "headSeenAt": isoformat_z(cursor.head_at) if cursor.head_at else None,
            "updatedAt": isoformat_z(cursor.updated_at),
        }
        # The watcher's last sign of life: a new head or a committed range.
        heard[cursor.chain_id] = max(filter(None, (cursor.head_at, cursor.updated_at)))
    return chains, heard


async def _database_reachable(ctx: AppContext) -> bool:
    try:
        async with ctx.db.read() as conn:
            await instance_repo.ping(conn)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return False
    return True
