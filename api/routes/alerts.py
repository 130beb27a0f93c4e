"""`GET /api/v1/alerts`: alert records, newest first (API.md, Operations)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response

from api.auth import require
from api.context import AppContext, context
from api.responses import ok, pagination
from api.schemas import Page, page_params
from pool.clock import isoformat_z
from pool.repository.alerts import list_alerts
from pool.repository.keys import ApiKey

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("pool:read"))]


def _iso(moment: Any) -> str | None:
    return isoformat_z(moment) if moment is not None else None


def alert_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "subject": row["subject"],
        "severity": row["severity"],
        "state": row["state"],
        "value": row["value"],
        "details": row["details"],
        "firstFiredAt": _iso(row["first_fired_at"]),
        "lastFiredAt": _iso(row["last_fired_at"]),
        "resolvedAt": _iso(row["resolved_at"]),
    }


@router.get("")
async def alerts(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    state: Literal["firing", "resolved"] | None = None,
) -> Response:
    async with ctx.db.read() as conn:
        found, total = await list_alerts(conn, state=state, offset=page.offset, limit=page.limit)
    return ok(
        {
            "alerts": [alert_view(row) for row in found],
            "pagination": pagination(page=page.page, limit=page.limit, total=total),
        }
    )
