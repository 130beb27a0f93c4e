"""`GET /api/v1/alerts`: alert records, newest first; and an operator's actions on one:
acknowledge, silence, unsilence (docs/api.md, Operations). The actions need `console:write`
and a reason, and are written to the audit log with the key that did them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.alert_schemas import AlertActionBody, AlertSilenceBody
from api.answers import answers
from api.answers.operations import Alert, AlertList
from api.auth import require
from api.context import AppContext, context
from api.responses import ok, pagination
from api.schemas import Page, page_params
from pool.alerts import actions
from pool.alerts.repository import list_alerts
from pool.deposits.payloads import alert_payload
from pool.keys.repository import ApiKey
from pool.vocabulary import AlertState

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("pool:read"))]
Operator = Annotated[ApiKey, Depends(require("console:write"))]
AlertId = Annotated[int, Path(alias="id", ge=1, le=2**63 - 1)]


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


@router.post("/{id}/acknowledge", responses=answers(Alert, "AlertAnswer", 409))
async def acknowledge(
    alert_id: AlertId, body: AlertActionBody, ctx: Ctx, key: Operator
) -> Response:
    found = await actions.acknowledge(ctx.db, alert_id, key.actor, body.reason)
    return ok(alert_payload(found), message="Alert acknowledged")


@router.post("/{id}/silence", responses=answers(Alert, "AlertSilencedAnswer"))
async def silence(alert_id: AlertId, body: AlertSilenceBody, ctx: Ctx, key: Operator) -> Response:
    found = await actions.silence(ctx.db, alert_id, key.actor, body.reason, body.minutes)
    return ok(alert_payload(found), message=f"Alert silenced for {body.minutes} minutes")


@router.post("/{id}/unsilence", responses=answers(Alert, "AlertUnsilencedAnswer", 409))
async def unsilence(alert_id: AlertId, body: AlertActionBody, ctx: Ctx, key: Operator) -> Response:
    found = await actions.unsilence(ctx.db, alert_id, key.actor, body.reason)
    return ok(alert_payload(found), message="Alert unsilenced")
