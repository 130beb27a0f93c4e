"""`GET /api/v1/alerts`: alert records, newest first (docs/api.md, Operations)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.answers import answers
from api.answers.operations import AlertList
from api.auth import require
from api.context import AppContext, context
from api.responses import ok, pagination
from api.schemas import Page, page_params
from pool.alerts.repository import list_alerts
from pool.deposits.payloads import alert_payload
from pool.keys.repository import ApiKey
from pool.vocabulary import AlertState

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("pool:read"))]


@router.get("", responses=answers(AlertList, "AlertListAnswer"))
async def alerts(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    state: AlertState | None = None,
) -> Response:
    async with ctx.db.read() as conn:
        found, total = await list_alerts(conn, state=state, offset=page.offset, limit=page.limit)
    return ok(
        {
            "alerts": [alert_payload(row) for row in found],
            "pagination": pagination(page=page.page, limit=page.limit, total=total),
        }
    )
