"""`GET /metrics`: Prometheus text (docs/api.md, Health and metrics; docs/operations.md).

No API key, as Prometheus expects; `ADDRPOOL_METRICS_TOKEN` asks for a bearer token instead,
and `ADDRPOOL_METRICS_ENABLED=false` leaves the route out altogether (`api/app.py`).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.answers.operations import METRICS_ANSWERS
from api.context import AppContext, context
from pool.kit.clock import utc_now
from pool.kit.errors import Unauthorized
from pool.kit.metrics import CONTENT_TYPE, exposition
from pool.monitoring.gauges import SnapshotCollector, read_snapshot

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses=METRICS_ANSWERS)
async def metrics(request: Request, ctx: Annotated[AppContext, Depends(context)]) -> Response:
    _check_token(ctx, request.headers.get("authorization"))
    # Read per scrape: the gauges must agree with the database, whichever worker answers.
    async with ctx.db.read() as conn:
        snapshot = await read_snapshot(
            conn, now=utc_now(), alerts=ctx.settings.alerts, bind_hours=ctx.bind_hours
        )
    return Response(exposition(SnapshotCollector(snapshot)), media_type=CONTENT_TYPE)


def _check_token(ctx: AppContext, authorization: str | None) -> None:
    token = ctx.settings.metrics_token
    if token is None:
        return
    scheme, _, presented = (authorization or "").partition(" ")
    presented = presented.strip()
    expected = token.get_secret_value().encode()
    # Constant-time, so the token cannot be guessed a byte at a time from response times.
    # An empty presented token never passes, even against an (odd) empty configured one.
    if (
        scheme.lower() != "bearer"
        or not presented
        or not hmac.compare_digest(presented.encode(), expected)
    ):
        raise Unauthorized("A valid metrics token is required", code="METRICS_TOKEN_REQUIRED")
