"""Upstream mode's inbound webhook: `POST /webhooks/payin` (the path is configurable).

Answers at once: verified and stored here, checked against the chain later by the worker.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import IntegrityError

from api.answers.operations import UPSTREAM_ANSWERS
from api.context import AppContext
from api.responses import JSON, error_body
from pool.kit.clock import utc_now
from pool.upstream.inbox import Verdict, store, verify

log = logging.getLogger("addrpool.upstream")


def router_for(path: str) -> APIRouter:
    router = APIRouter(tags=["upstream"])
    router.add_api_route(
        path, inbound, methods=["POST"], include_in_schema=True, responses=UPSTREAM_ANSWERS
    )
    return router


async def inbound(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    raw = await request.body()
    secret = ctx.settings.upstream_webhook_secret
    if secret is None:
        verdict = Verdict(False, "no ADDRPOOL_UPSTREAM_WEBHOOK_SECRET configured", None)
    else:
        verdict = verify(
            raw,
            request.headers.get("x-payin-signature"),
            secret.get_secret_value().encode(),
            window_seconds=ctx.settings.upstream_replay_window,
        )
    fresh = await _store(ctx, verdict)
    if not verdict.accepted:
        log.warning("upstream webhook rejected", extra={"reason": verdict.reason})
        body = error_body(
            error="Unauthorized", code="INVALID_SIGNATURE", message=verdict.reason or "rejected"
        )
        return Response(body, status_code=401, media_type=JSON)
    return Response(
        orjson.dumps({"success": True, "data": {"received": True, "duplicate": not fresh}}),
        media_type=JSON,
    )


async def _store(ctx: AppContext, verdict: Verdict) -> bool:
    try:
        async with ctx.db.write() as conn:
            return await store(conn, verdict, now=utc_now())
    except IntegrityError:
        return False  # the same event, delivered twice at once: the other copy was stored
