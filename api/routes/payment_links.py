"""PayIn's payment links API (docs/api.md, Payment links): a shareable checkout that creates
orders. Scopes as orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.answers import answers
from api.answers.payment_links import PaymentLink, PaymentLinkList
from api.auth import require
from api.context import AppContext, context
from api.link_schemas import LinkPatch, LinkRequest
from api.responses import ok, pagination
from api.routes.orders import base_url
from api.schemas import Page, comma_choices, page_params
from pool.keys.repository import ApiKey
from pool.kit.clock import utc_now
from pool.kit.errors import Conflict
from pool.links import repository as repo
from pool.links import service as links
from pool.links.payloads import link_payload
from pool.links.records import LinkRow
from pool.vocabulary import LINK_STATUSES

router = APIRouter(prefix="/api/v1/payment-links", tags=["payment links"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("orders:read"))]
Writer = Annotated[ApiKey, Depends(require("orders:write"))]
LinkId = Annotated[str, Path(alias="id", pattern=r"^pl_[A-Za-z0-9]{1,60}$", max_length=64)]


def _answer(link: LinkRow, ctx: AppContext, request: Request) -> dict[str, object]:
    return link_payload(link, base_url=base_url(ctx, request), now=utc_now())


@router.post(
    "", status_code=201, responses=answers(PaymentLink, "PaymentLinkAnswer", 409, success=(201,))
)
async def create_link(body: LinkRequest, request: Request, ctx: Ctx, key: Writer) -> Response:
    if ctx.upstream is not None:
        # PayIn allocates the addresses there: an order made here would take one PayIn knows
        # nothing of. Its own payment links are the way.
        raise Conflict(
            "payment links are not served in upstream mode (PayIn allocates the addresses): "
            "create the link at PayIn",
            code="UPSTREAM_MODE",
        )
    link = await links.create_link(
        ctx.db,
        body.ask(),
        chains=ctx.order_chains,
        allow_http=ctx.settings.webhook_allow_private,
        actor=key.actor,
    )
    return ok(_answer(link, ctx, request), status=201, message="Payment link created (draft)")


@router.get("", responses=answers(PaymentLinkList, "PaymentLinkListAnswer"))
async def list_links(
    request: Request,
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    status: Annotated[
        str | None,
        Query(max_length=100, description="comma-separated: " + ", ".join(LINK_STATUSES)),
    ] = None,
) -> Response:
    async with ctx.db.read() as conn:
        rows, total = await repo.list_links(
            conn,
            statuses=comma_choices(status, LINK_STATUSES, "status"),
            offset=page.offset,
            limit=page.limit,
        )
    data = {
        "paymentLinks": [_answer(row, ctx, request) for row in rows],
        "pagination": pagination(page=page.page, limit=page.limit, total=total),
    }
    return ok(data)


@router.get("/{id}", responses=answers(PaymentLink, "PaymentLinkDetailAnswer", 404))
async def get_link(request: Request, ctx: Ctx, _key: Reader, link_id: LinkId) -> Response:
    async with ctx.db.read() as conn:
        link = await links.get_link(conn, link_id)
    return ok(_answer(link, ctx, request))


@router.patch("/{id}", responses=answers(PaymentLink, "PaymentLinkChangedAnswer", 404, 409))
async def patch_link(
    body: LinkPatch, request: Request, ctx: Ctx, key: Writer, link_id: LinkId
) -> Response:
    link = await links.patch_link(ctx.db, link_id, body.changes(), actor=key.actor)
    return ok(_answer(link, ctx, request), message="Payment link updated")


@router.post(
    "/{id}/publish", responses=answers(PaymentLink, "PaymentLinkPublishedAnswer", 404, 409)
)
async def publish_link(request: Request, ctx: Ctx, key: Writer, link_id: LinkId) -> Response:
    link, changed = await links.publish_link(
        ctx.db, link_id, chains=ctx.order_chains, actor=key.actor
    )
    message = "Payment link published" if changed else "Payment link was already published"
    return ok(_answer(link, ctx, request), message=message)


@router.post("/{id}/archive", responses=answers(PaymentLink, "PaymentLinkArchivedAnswer", 404))
async def archive_link(request: Request, ctx: Ctx, key: Writer, link_id: LinkId) -> Response:
    link, changed = await links.archive_link(ctx.db, link_id, actor=key.actor)
    message = "Payment link archived" if changed else "Payment link was already archived"
    return ok(_answer(link, ctx, request), message=message)
