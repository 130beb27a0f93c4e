"""The console's record pages and their actions (docs/operations.md, The console): webhook
endpoints and deliveries (each with its attempts; redeliver one, a succeeded one included, or
all failed ones of an endpoint) and the audit log. Every action needs `console:write` and a
reason, and is written to the audit log with the key that did it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.console.access import (
    Signed,
    acting_form,
    message,
    redirect,
    show,
)
from api.context import AppContext, context
from api.schemas import utc_moment
from pool.console.activity_repository import attempts_of, audit_page
from pool.console.service import Session
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.errors import AddrpoolError, ValidationFailed
from pool.kit.paging import pagination
from pool.vocabulary import DELIVERY_STATUSES
from pool.webhooks import endpoints_repository as hooks
from pool.webhooks import retries
from pool.webhooks.endpoints import list_endpoints
from pool.webhooks.events_repository import insert_audit
from pool.webhooks.replay import ReplayRange, replay
from pool.webhooks.views import delivery_view, endpoint_view

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
PER_PAGE = 50
Id = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9_]+$")]


@router.get("/ui/webhooks")
async def webhooks_page(
    request: Request,
    ctx: Ctx,
    session: Signed,
    endpoint: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    event_type: Annotated[str | None, Query(alias="eventType", max_length=64)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    if status is not None and status not in DELIVERY_STATUSES:
        status = None  # a filter the page never offers: show every status
    async with ctx.db.read() as conn:
        endpoints = await list_endpoints(conn)
        rows, total = await hooks.list_deliveries(
            conn,
            endpoint_id=endpoint or None,
            status=status,
            event_type=event_type or None,
            offset=(page_number - 1) * PER_PAGE,
            limit=PER_PAGE,
        )
    return show(
        "webhooks.html",
        session,
        ctx,
        "/ui/webhooks",
        endpoints=[endpoint_view(e) for e in endpoints],
        deliveries=[delivery_view(r) for r in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        filters={"endpoint": endpoint or "", "status": status or "", "eventType": event_type or ""},
        statuses=DELIVERY_STATUSES,
    )


@router.get("/ui/webhooks/deliveries/{delivery_id}")
async def delivery_page(request: Request, ctx: Ctx, session: Signed, delivery_id: Id) -> Response:
    async with ctx.db.read() as conn:
        found = await hooks.get_delivery(conn, delivery_id)
        attempts = await attempts_of(conn, delivery_id) if found else []
    if found is None:
        return message(session, ctx, "Not found", f"No delivery {delivery_id}.", 404)
    return show(
        "delivery.html",
        session,
        ctx,
        "/ui/webhooks",
        delivery=delivery_view(found),
        attempts=[{**asdict(a), "at": isoformat_z(a.attempted_at)} for a in attempts],
    )


@router.post("/ui/webhooks/deliveries/{delivery_id}/redeliver")
async def redeliver(request: Request, ctx: Ctx, session: Signed, delivery_id: Id) -> Response:
    async def act(conn: Any, session: Session, reason: str, _form: dict[str, str]) -> str:
        await retries.redeliver(conn, delivery_id, now=utc_now())
        await _audit(conn, session, "delivery.redeliver", delivery_id, reason)
        return f"/ui/webhooks/deliveries/{delivery_id}"

    return await _act(request, ctx, session, act)


@router.post("/ui/webhooks/endpoints/{endpoint_id}/retry-failed")
async def retry_failed(request: Request, ctx: Ctx, session: Signed, endpoint_id: Id) -> Response:
    async def act(conn: Any, session: Session, reason: str, _form: dict[str, str]) -> str:
        count = await retries.retry_failed_of_endpoint(conn, endpoint_id, now=utc_now())
        await _audit(conn, session, "delivery.retry_failed", endpoint_id, reason, count=count)
        return f"/ui/webhooks?endpoint={endpoint_id}&status=pending"

    return await _act(request, ctx, session, act)


@router.post("/ui/webhooks/endpoints/{endpoint_id}/replay")
async def replay_range(request: Request, ctx: Ctx, session: Signed, endpoint_id: Id) -> Response:
    """From the endpoint's replay form: `since`/`until` (ISO 8601, UTC when no zone is given)
    or `from`/`to` event ids."""

    async def act(conn: Any, session: Session, reason: str, form: dict[str, str]) -> str:
        chosen = ReplayRange(
            from_event_id=form.get("from") or None,
            to_event_id=form.get("to") or None,
            since=_moment(form.get("since"), "since"),
            until=_moment(form.get("until"), "until"),
        )
        replayed = await replay(conn, endpoint_id=endpoint_id, chosen=chosen, now=utc_now())
        await _audit(
            conn,
            session,
            "webhook.replay",
            endpoint_id,
            reason,
            requeued=replayed.requeued,
            created=replayed.created,
        )
        return f"/ui/webhooks?endpoint={endpoint_id}&status=pending"

    return await _act(request, ctx, session, act)


def _moment(text: str | None, field: str) -> datetime | None:
    if not text:
        return None
    try:
        return utc_moment(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValidationFailed(f"{field} must be a moment such as 2026-12-01T00:00") from None


async def _act(request: Request, ctx: AppContext, session: Session, act: Any) -> Response:
    """Run an action in one transaction with its audit record; then back to the page it
    changed (303), or the refusal."""
    form = await acting_form(request, ctx, session)
    if isinstance(form, Response):
        return form
    reason = form["reason"].strip()[:500]
    try:
        async with ctx.db.write() as conn:
            to = await act(conn, session, reason, form)
    except AddrpoolError as refused:
        return message(session, ctx, "Refused", refused.message, refused.status)
    return redirect(to)


async def _audit(
    conn: Any, session: Session, action: str, subject: str, reason: str, **details: Any
) -> None:
    await insert_audit(
        conn,
        actor=session.actor,
        action=action,
        subject=subject,
        details={"reason": reason, "via": "console", **details},
        now=utc_now(),
    )


@router.get("/ui/audit")
async def audit_log_page(
    request: Request,
    ctx: Ctx,
    session: Signed,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    async with ctx.db.read() as conn:
        records, total = await audit_page(conn, offset=(page_number - 1) * PER_PAGE, limit=PER_PAGE)
    shown = [{**r, "at": isoformat_z(r["at"])} for r in records]
    return show(
        "audit.html",
        session,
        ctx,
        "/ui/audit",
        records=shown,
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
    )
