"""The console's operations pages (docs/operations.md, The console): the address pool (filters,
archive and unarchive with a reason), the latest reconciliation report with each discrepancy
linked to its order or deposit, and the alerts' history."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.console.access import (
    Signed,
    acting_form,
    message,
    redirect,
    show,
)
from api.context import AppContext, context
from api.views import address_view
from chains.codec import address_parser
from pool.addresses.archive import archive_address
from pool.addresses.repository import list_addresses
from pool.alerts import actions as alert_actions
from pool.alerts.repository import list_alerts
from pool.deposits.payloads import alert_payload
from pool.kit.clock import utc_now
from pool.kit.errors import AddrpoolError
from pool.kit.paging import pagination
from pool.reconciliation.repository import load_report
from pool.reconciliation.service import report_view
from pool.vocabulary import ADDRESS_STATES, PROTOCOLS

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
PER_PAGE = 50
Text = Annotated[str | None, Query(max_length=255)]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]
ALERT_STATES = ("firing", "resolved")


@router.get("/ui/pool")
async def pool_page(
    request: Request,
    ctx: Ctx,
    session: Signed,
    protocol: Text = None,
    status: Text = None,
    page_number: PageNumber = 1,
) -> Response:
    chosen = next((p for p in PROTOCOLS if p == protocol), None)
    state = status if status in ADDRESS_STATES else None
    now = utc_now()
    async with ctx.db.read() as conn:
        rows, total = await list_addresses(
            conn,
            protocol=chosen,
            status=state,
            now=now,
            offset=(page_number - 1) * PER_PAGE,
            limit=PER_PAGE,
        )
    params = {"protocol": chosen or "", "status": state or ""}
    return show(
        "pool.html",
        session,
        ctx,
        "/ui/pool",
        addresses=[address_view(row, now=now) for row in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        params=params,
        query=urlencode({k: v for k, v in params.items() if v}) + "&",
        protocols=PROTOCOLS,
        states=ADDRESS_STATES,
    )


@router.post("/ui/pool/archive")
async def change_archived(request: Request, ctx: Ctx, session: Signed) -> Response:
    """`action` = archive | unarchive, `protocol`, `address`, `reason`."""
    form = await acting_form(request, ctx, session)
    if isinstance(form, Response):
        return form
    protocol = next((p for p in PROTOCOLS if p == form.get("protocol")), None)
    if protocol is None or form.get("action") not in ("archive", "unarchive"):
        return message(session, ctx, "Refused", "Choose a protocol and archive or unarchive.", 400)
    try:
        parsed = address_parser(protocol)(form.get("address", ""))
        await archive_address(
            ctx.db,
            parsed,
            archived=form["action"] == "archive",
            actor=session.actor,
            reason=form["reason"].strip()[:500],
        )
    except AddrpoolError as refused:
        return message(session, ctx, "Refused", refused.message, refused.status)
    ctx.pool_alerts.changed(protocol)
    return redirect(f"/ui/pool?protocol={protocol}")


@router.get("/ui/reconciliation")
async def reconciliation_page(request: Request, ctx: Ctx, session: Signed) -> Response:
    async with ctx.db.read() as conn:
        stored = await load_report(conn)
    return show(
        "reconciliation.html",
        session,
        ctx,
        "/ui/reconciliation",
        report=None if stored is None else report_view(stored),
    )


@router.get("/ui/alerts")
async def alerts_page(
    request: Request, ctx: Ctx, session: Signed, state: Text = None, page_number: PageNumber = 1
) -> Response:
    chosen = state if state in ALERT_STATES else None
    async with ctx.db.read() as conn:
        rows, total = await list_alerts(
            conn, state=chosen, offset=(page_number - 1) * PER_PAGE, limit=PER_PAGE
        )
    return show(
        "alerts.html",
        session,
        ctx,
        "/ui/alerts",
        alerts=[alert_payload(row) for row in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        params={"state": chosen or ""},
        query=urlencode({"state": chosen} if chosen else {}) + "&",
        states=ALERT_STATES,
    )


@router.post("/ui/alerts/{alert_id}/{action}")
async def act_on_alert(
    request: Request,
    ctx: Ctx,
    session: Signed,
    alert_id: Annotated[int, Path(ge=1)],
    action: Annotated[str, Path(pattern="^(acknowledge|silence|unsilence)$")],
) -> Response:
    """Acknowledge an alert's episode, silence its subject for `minutes`, or end the silence;
    pool.alerts.actions writes the audit record with the reason."""
    form = await acting_form(request, ctx, session)
    if isinstance(form, Response):
        return form
    reason = form["reason"]
    try:
        if action == "acknowledge":
            await alert_actions.acknowledge(ctx.db, alert_id, session.actor, reason)
        elif action == "silence":
            minutes = form.get("minutes", "")
            await alert_actions.silence(
                ctx.db, alert_id, session.actor, reason, int(minutes) if minutes.isdigit() else 0
            )
        else:
            await alert_actions.unsilence(ctx.db, alert_id, session.actor, reason)
    except AddrpoolError as refused:
        return message(session, ctx, "Refused", refused.message, refused.status)
    return redirect("/ui/alerts")
