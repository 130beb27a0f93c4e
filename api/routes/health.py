"""`GET /health`: PayIn's shape, plus the checks an operator's probe needs."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Response
from sqlalchemy.exc import SQLAlchemyError

from api.context import AppContext, context
from api.responses import JSON
from api.schemas import HEALTH_ANSWERS
from pool import __version__
from pool.chain_state.repository import load_cursors
from pool.instance import repository as instance_repo
from pool.kit.clock import isoformat_z, utc_now

router = APIRouter(tags=["health"])
log = logging.getLogger("addrpool.health")


@router.get("/health", responses=HEALTH_ANSWERS)
async def health(ctx: Annotated[AppContext, Depends(context)]) -> Response:
    database_ok = await _database_reachable(ctx)
    body: dict[str, Any] = {
        "status": "healthy" if database_ok else "unhealthy",
        "timestamp": isoformat_z(utc_now()),
        "version": __version__,
        "network": ctx.settings.network,
        "checks": {
            "database": "ok" if database_ok else "unreachable",
            "chains": await _chains(ctx) if database_ok else {},
        },
        "monitoredChains": ctx.monitored_chains,
    }
    return Response(orjson.dumps(body), status_code=200 if database_ok else 503, media_type=JSON)


async def _chains(ctx: AppContext) -> dict[str, Any]:
    """What the watchers last wrote (never an RPC call inside a request), and what is unwatched."""
    async with ctx.db.read() as conn:
        cursors = await load_cursors(conn)
    now = utc_now()
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
    return chains


async def _database_reachable(ctx: AppContext) -> bool:
    try:
        async with ctx.db.read() as conn:
            await instance_repo.ping(conn)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return False
    return True
