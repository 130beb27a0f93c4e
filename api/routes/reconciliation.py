"""The reconciliation report and daily totals (docs/api.md, Alerts and reconciliation).

Both read only what the reconciliation worker and the watcher stored: no chain is read
inside a request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.answers import answers
from api.answers.operations import Report, Totals
from api.auth import require
from api.context import AppContext, context
from api.responses import ok
from pool.deposits.totals import daily_totals, totals_csv
from pool.keys.repository import ApiKey
from pool.kit.clock import isoformat_z, parse_moment, utc_now
from pool.kit.errors import NotFound, ValidationFailed
from pool.reconciliation.repository import credited_between, load_report
from pool.reconciliation.service import report_view

router = APIRouter(prefix="/api/v1/reconciliation", tags=["reconciliation"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("pool:read"))]
DEFAULT_TOTALS_PERIOD = "30d"
# `format=csv` answers the same totals as CSV text (pool/deposits/totals.py).
TOTALS_ANSWERS = answers(Totals, "TotalsAnswer")
TOTALS_ANSWERS[200]["content"] = {"text/csv": {"schema": {"type": "string"}}}


@router.get("/report", responses=answers(Report, "ReportAnswer", 404))
async def latest(ctx: Ctx, _key: Reader) -> Response:
    async with ctx.db.read() as conn:
        stored = await load_report(conn)
    if stored is None:
        raise NotFound("No reconciliation report yet: the worker has not finished a run")
    return ok(report_view(stored))


@router.get("/totals", responses=TOTALS_ANSWERS)
async def totals(
    ctx: Ctx,
    _key: Reader,
    since: Annotated[str, Query(max_length=40)] = DEFAULT_TOTALS_PERIOD,
    until: Annotated[str | None, Query(max_length=40)] = None,
    chain_id: Annotated[str | None, Query(alias="chainId", max_length=64)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    now = utc_now()
    try:
        start = parse_moment(since, now=now)
        end = parse_moment(until, now=now) if until else now
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    if end <= start:
        raise ValidationFailed("until must be after since")
    async with ctx.db.read() as conn:
        rows = await credited_between(
            conn, since=start, until=end, chain_ids=[chain_id] if chain_id else None
        )
    found = daily_totals(rows)
    if format == "csv":
        return Response(totals_csv(found), media_type="text/csv; charset=utf-8")
    return ok({"since": isoformat_z(start), "until": isoformat_z(end), "totals": found})
