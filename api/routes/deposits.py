"""PayIn's deposit-address API (PayIn's guide; docs/api.md, Deposits)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from api.answers import answers
from api.answers.deposits import (
    Binding,
    Deposit,
    DepositList,
    Reference,
    ReferenceList,
    Unbinding,
)
from api.auth import Caller, require, require_caller
from api.context import AppContext, context
from api.errors import UPSTREAM_STATUSES
from api.responses import ok, pagination
from api.schemas import (
    REFERENCE_PATTERN,
    AttributeRequest,
    BindRequest,
    Page,
    ProtocolName,
    ResolveRequest,
    UnbindRequest,
    page_params,
)
from api.views import (
    binding_view,
    deposit_view,
    reference_summary_view,
    reference_view,
    unbound_view,
)
from chains.codec import address_parser
from pool.addresses.repository import find_address_id
from pool.bindings import references
from pool.bindings import service as allocation
from pool.bindings.records import BindResult
from pool.deposits import resolution
from pool.deposits.repository import DepositFilters, list_deposits
from pool.keys.repository import ApiKey
from pool.kit import metrics
from pool.kit.errors import InsufficientAddresses, NotFound, ValidationFailed
from pool.upstream.binding import bind_through_upstream, unbind_through_upstream
from pool.vocabulary import CONSOLE_WRITE, DEPOSIT_STATUSES, PROTOCOLS, ParsedAddress, Protocol

router = APIRouter(prefix="/api/v1/deposits", tags=["deposits"])
log = logging.getLogger("addrpool.bind")
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("deposits:read"))]
Writer = Annotated[ApiKey, Depends(require("deposits:write"))]
Operator = Annotated[ApiKey, Depends(require(CONSOLE_WRITE))]
DepositId = Annotated[str, Path(max_length=64)]
bind_caller = require_caller("deposits:write")
BindCaller = Annotated[Caller, Depends(bind_caller)]
DEPOSIT_STATUS_PATTERN = "|".join(DEPOSIT_STATUSES)


@router.post(
    "/bind",
    status_code=201,
    responses=answers(Binding, "BindAnswer", 409, *UPSTREAM_STATUSES, success=(201, 200)),
)
async def bind(body: BindRequest, caller: BindCaller) -> Response:
    ctx, key = caller.ctx, caller.key
    try:
        result = await _bind(body, ctx, key)
    except InsufficientAddresses:
        metrics.count_bind(body.protocol, "insufficient")
        ctx.pool_alerts.changed(body.protocol)
        raise
    metrics.count_bind(body.protocol, "created" if result.created else "existing")
    if result.created:
        ctx.pool_alerts.changed(body.protocol)  # evaluated moments later, off this request
    monitored = ctx.monitored_chains.get(body.protocol, [])
    if not monitored and ctx.upstream is None:  # upstream mode: PayIn watches for us
        _warn_unmonitored(ctx, body.protocol)
    data = binding_view(result.binding, monitored)
    if result.created:
        return ok(data, status=201, message="Address bound")
    return ok(data, status=200, message="Reference already bound; existing binding returned")


def _warn_unmonitored(ctx: AppContext, protocol: Protocol) -> None:
    """Once per protocol and process: an address handed out where no chain is watched will
    never see its deposit, and the client's only hint is `monitoredChains: []`."""
    if protocol in ctx.warned_unmonitored:
        return
    ctx.warned_unmonitored.add(protocol)
    log.warning(
        "bound a %s address while no %s chain is watched: deposits to it will not be seen "
        "(configure a chain's rpc_urls, and run `addrpool serve` or `addrpool worker`)",
        protocol,
        protocol,
        extra={"protocol": protocol},
    )


async def _bind(body: BindRequest, ctx: AppContext, key: ApiKey) -> BindResult:
    if ctx.upstream is not None:  # upstream mode: PayIn allocates, we check and record
        return await bind_through_upstream(
            ctx.db,
            ctx.upstream,
            address_parser(body.protocol),
            reference=body.deposit_reference,
            protocol=body.protocol,
            metadata=body.metadata,
            actor=key.actor,
            cooldown=ctx.settings.cooldown,
        )

    return await allocation.bind_address(
        ctx.db,
        reference=body.deposit_reference,
        protocol=body.protocol,
        metadata=body.metadata,
        actor=key.actor,
    )


@router.post("/unbind", responses=answers(Unbinding, "UnbindAnswer", 404, *UPSTREAM_STATUSES))
async def unbind(body: UnbindRequest, ctx: Ctx, key: Writer) -> Response:
    if body.deposit_reference is None and body.address is None:
        raise ValidationFailed("Required fields: depositReference, or address with protocol")
    if body.address is not None and body.protocol is None:
        raise ValidationFailed("protocol is required when unbinding by address")

    parsed = None
    if body.address is not None and body.protocol is not None:
        parsed = address_parser(body.protocol)(body.address)
    if ctx.upstream is not None:
        return await _unbind_upstream(body, parsed, ctx, key)

    unbound = await allocation.unbind_address(
        ctx.db,
        actor=key.actor,
        cooldown=ctx.settings.cooldown,
        reference=body.deposit_reference,
        protocol=body.protocol,
        address=parsed,
    )
    metrics.count_unbinds(u.protocol for u in unbound)
    for protocol in {u.protocol for u in unbound}:
        ctx.pool_alerts.changed(protocol)  # free again at once when the cooldown is zero
    data = {
        "depositReference": unbound[0].deposit_reference,
        "unbound": [unbound_view(u) for u in unbound],
    }
    return ok(data, message="Address unbound")


async def _unbind_upstream(
    body: UnbindRequest, parsed: ParsedAddress | None, ctx: AppContext, key: ApiKey
) -> Response:
    forwarded = body.model_dump(by_alias=True, exclude_none=True)
    address_id = None
    if parsed is not None:
        forwarded["address"] = parsed.text
        async with ctx.db.read() as conn:
            address_id = await find_address_id(conn, protocol=parsed.protocol, text=parsed.text)
    data = await unbind_through_upstream(
        ctx.db,
        ctx.upstream,  # type: ignore[arg-type]  # checked by the caller
        body=forwarded,
        address_id=address_id,
        actor=key.actor,
        cooldown=ctx.settings.cooldown,
    )
    metrics.count_unbinds(
        u["protocol"] for u in data.get("unbound", []) if u.get("protocol") in PROTOCOLS
    )
    return ok(data, message="Address unbound")


@router.get("/references", responses=answers(ReferenceList, "ReferenceListAnswer"))
async def list_references(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    protocol: ProtocolName | None = None,
    search: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    async with ctx.db.read() as conn:
        rows, total = await references.list_references(
            conn, protocol=protocol, search=search, offset=page.offset, limit=page.limit
        )
    data = {
        "references": [reference_summary_view(b, totals) for b, totals in rows],
        "pagination": pagination(page=page.page, limit=page.limit, total=total),
    }
    return ok(data)


@router.get(
    "/references/{deposit_reference}",
    responses=answers(Reference, "ReferenceAnswer", 404, *UPSTREAM_STATUSES),
)
async def get_reference(
    ctx: Ctx,
    _key: Reader,
    deposit_reference: Annotated[str, Path(pattern=REFERENCE_PATTERN, max_length=255)],
    protocol: ProtocolName | None = None,
) -> Response:
    if ctx.upstream is not None:  # upstream mode: PayIn's view of its bindings
        return ok(await ctx.upstream.reference(deposit_reference, protocol))
    async with ctx.db.read() as conn:
        view = await references.get_reference(conn, reference=deposit_reference, protocol=protocol)
    data = reference_view(view)
    data["monitoredChains"] = ctx.monitored_chains.get(view.binding.protocol, [])
    return ok(data)


@router.get("", responses=answers(DepositList, "DepositListAnswer"))
async def get_deposits(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    deposit_reference: Annotated[
        str | None, Query(alias="depositReference", max_length=255)
    ] = None,
    status: Annotated[str | None, Query(pattern=f"^({DEPOSIT_STATUS_PATTERN})$")] = None,
    chain_id: Annotated[str | None, Query(alias="chainId", max_length=64)] = None,
    currency: Annotated[str | None, Query(max_length=16)] = None,
    address: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    filters = DepositFilters(deposit_reference, status, chain_id, currency, address)
    async with ctx.db.read() as conn:
        rows, total = await list_deposits(
            conn, filters=filters, offset=page.offset, limit=page.limit
        )
    data = {
        "deposits": [deposit_view(r) for r in rows],
        "pagination": pagination(page=page.page, limit=page.limit, total=total),
    }
    return ok(data)


@router.get("/{deposit_id}", responses=answers(Deposit, "DepositAnswer", 404))
async def get_deposit(
    ctx: Ctx, _key: Reader, deposit_id: Annotated[str, Path(max_length=64)]
) -> Response:
    async with ctx.db.read() as conn:
        rows, _ = await list_deposits(
            conn, filters=DepositFilters(deposit_id=deposit_id), offset=0, limit=1
        )
    if not rows:
        raise NotFound(f"Deposit {deposit_id} not found", code="DEPOSIT_NOT_FOUND")
    return ok(deposit_view(rows[0]))


@router.post("/{deposit_id}/attribute", responses=answers(Deposit, "AttributeAnswer", 409))
async def attribute_deposit(
    body: AttributeRequest, ctx: Ctx, key: Operator, deposit_id: DepositId
) -> Response:
    """Credit an unattributed deposit (or an order's late or mismatched transfer) to a
    reference: it gets the `deposit.*` events a bound deposit would have had by now."""
    done = await resolution.attribute(
        ctx.db, deposit_id, body.deposit_reference, key.actor, body.reason
    )
    message = "Deposit attributed" if done.changed else "Deposit already attributed to it"
    return ok(deposit_view(done.deposit), message=message)


@router.post("/{deposit_id}/resolve", responses=answers(Deposit, "ResolveAnswer", 409))
async def resolve_deposit(
    body: ResolveRequest, ctx: Ctx, key: Operator, deposit_id: DepositId
) -> Response:
    """Record that an unclaimed, late or mismatched deposit was refunded or is ignored."""
    done = await resolution.resolve(ctx.db, deposit_id, body.outcome, key.actor, body.note)
    message = f"Deposit resolved as {body.outcome}"
    if not done.changed:
        message = f"Deposit already resolved as {body.outcome}"
    return ok(deposit_view(done.deposit), message=message)
