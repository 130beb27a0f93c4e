"""Operators' view of the address pool (API.md, Address pool)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import require
from api.context import AppContext, context
from api.responses import ok, pagination
from api.schemas import Page, ProtocolName, page_params
from api.views import address_view, summary_view
from chains.codec import address_parser
from pool.archive import change_archived
from pool.clock import utc_now
from pool.domain import ParsedAddress, Protocol
from pool.repository.addresses import list_addresses
from pool.repository.keys import ApiKey
from pool.stats import summarize

router = APIRouter(prefix="/api/v1/address-pool", tags=["address pool"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("pool:read"))]
Writer = Annotated[ApiKey, Depends(require("pool:write"))]
AddressStatus = Literal["available", "bound", "cooling_down", "archived"]


@router.get("/summary")
async def summary(ctx: Ctx, _key: Reader) -> Response:
    async with ctx.db.read() as conn:
        summaries = await summarize(conn, now=utc_now())
    return ok({s.protocol: summary_view(s) for s in summaries})


@router.get("/availability")
async def availability(ctx: Ctx, _key: Reader, protocol: ProtocolName) -> Response:
    async with ctx.db.read() as conn:
        summaries = await summarize(conn, now=utc_now())
    chosen = next(s for s in summaries if s.protocol == protocol)
    return ok({"protocol": protocol, **summary_view(chosen)})


@router.get("/addresses")
async def addresses(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    protocol: ProtocolName | None = None,
    status: AddressStatus | None = None,
) -> Response:
    now = utc_now()
    async with ctx.db.read() as conn:
        rows, total = await list_addresses(
            conn, protocol=protocol, status=status, now=now, offset=page.offset, limit=page.limit
        )
    data = {
        "addresses": [address_view(r, now=now) for r in rows],
        "pagination": pagination(page=page.page, limit=page.limit, total=total),
    }
    return ok(data)


AddressText = Annotated[str, Path(min_length=1, max_length=128)]


@router.patch("/addresses/{address}/archive")
async def archive(
    ctx: Ctx, key: Writer, address: AddressText, protocol: ProtocolName | None = None
) -> Response:
    parsed = _parse(address, protocol)
    await _change(ctx, key, parsed, archived=True)
    return ok({"address": parsed.text, "protocol": parsed.protocol, "status": "archived"})


@router.patch("/addresses/{address}/unarchive")
async def unarchive(
    ctx: Ctx, key: Writer, address: AddressText, protocol: ProtocolName | None = None
) -> Response:
    parsed = _parse(address, protocol)
    await _change(ctx, key, parsed, archived=False)
    return ok({"address": parsed.text, "protocol": parsed.protocol, "status": "available"})


def _parse(address: str, protocol: Protocol | None) -> ParsedAddress:
    """The protocol can be left out: an address's shape says which it is."""
    chosen: Protocol = protocol or ("evm" if address.lower().startswith("0x") else "tron")
    return address_parser(chosen)(address)


async def _change(ctx: AppContext, key: ApiKey, parsed: ParsedAddress, *, archived: bool) -> None:
    async def work(conn: AsyncConnection) -> None:
        await change_archived(
            conn, parsed=parsed, archived=archived, actor=key.actor, now=utc_now()
        )

    await ctx.db.run_write(work)
