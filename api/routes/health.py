"""`GET /health`: PayIn's shape, plus the checks an operator's probe needs."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.context import AppContext, context
from api.responses import JSON
from pool import __version__
from pool.clock import isoformat_z, utc_now

router = APIRouter(tags=["health"])
log = logging.getLogger("addrpool.health")


@router.get("/health")
async def health(ctx: Annotated[AppContext, Depends(context)]) -> Response:
    database_ok = await _database_reachable(ctx)
    body: dict[str, Any] = {
        "status": "healthy" if database_ok else "unhealthy",
        "timestamp": isoformat_z(utc_now()),
        "version": __version__,
        "network": ctx.settings.network,
        "checks": {
            "database": "ok" if database_ok else "unreachable",
            # Filled per chain by the watcher; a chain without an RPC URL is not watched.
            "chains": {},
        },
        "monitoredChains": ctx.monitored_chains,
    }
    return Response(orjson.dumps(body), status_code=200 if database_ok else 503, media_type=JSON)


async def _database_reachable(ctx: AppContext) -> bool:
    try:
        async with ctx.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return False
    return True
