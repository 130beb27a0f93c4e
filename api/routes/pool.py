"""Operators' view of the address pool (docs/api.md, Address pool)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import ValidationError as PydanticValidationError

from api.answers import answers
from api.answers.address_pool import (
    AddressList,
    Availability,
    ImportSummary,
    KeyRefills,
    PoolAddress,
    PoolSummaries,
)
from api.auth import require
from api.context import AppContext, context
from api.errors import validation_error
from api.responses import ok, pagination
from api.schemas import ImportBody, Page, ProtocolName, XpubImportBody, page_params
from api.views import address_view, import_view
from chains.codec import address_parser
from chains.hd import derive_addresses, parse_extended_public_key
from chains.verify import check_master_keys
from pool.addresses.archive import archive_address, protocol_by_shape
from pool.addresses.import_formats import RawRow, item_rows, parse_rows
from pool.addresses.import_problems import refuse_secrets, secrets_in_text
from pool.addresses.importer import ImportReport, ImportSource
from pool.addresses.imports import AccountKey, check_rows, import_file, import_xpub
from pool.addresses.repository import list_addresses
from pool.addresses.stats import summarize
from pool.deposits.payloads import pool_summary_payload
from pool.keys.repository import ApiKey
from pool.kit.clock import utc_now
from pool.kit.errors import ValidationFailed
from pool.refill.payloads import status_payload
from pool.refill.switch import status as refill_status
from pool.vocabulary import ARCHIVED, AVAILABLE, AddressState, Protocol

router = APIRouter(prefix="/api/v1/address-pool", tags=["address pool"])
Ctx = Annotated[AppContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require("pool:read"))]
Writer = Annotated[ApiKey, Depends(require("pool:write"))]


@router.get("/summary", responses=answers(PoolSummaries, "PoolSummaryAnswer"))
async def summary(ctx: Ctx, _key: Reader) -> Response:
    async with ctx.db.read() as conn:
        summaries = await summarize(
            conn, now=utc_now(), alerts=ctx.settings.alerts, bind_hours=ctx.bind_hours
        )
    return ok({s.protocol: pool_summary_payload(s) for s in summaries})


@router.get("/availability", responses=answers(Availability, "AvailabilityAnswer"))
async def availability(ctx: Ctx, _key: Reader, protocol: ProtocolName) -> Response:
    async with ctx.db.read() as conn:
        summaries = await summarize(
            conn, now=utc_now(), alerts=ctx.settings.alerts, bind_hours=ctx.bind_hours
        )
    chosen = next(s for s in summaries if s.protocol == protocol)
    return ok({"protocol": protocol, **pool_summary_payload(chosen)})


@router.get("/refill", responses=answers(KeyRefills, "KeyRefillsAnswer"))
async def refill(ctx: Ctx, _key: Reader) -> Response:
    """Read only: the keys are switched with `addrpool refill enable|disable`."""
    found = await refill_status(ctx.db, settings=ctx.settings.refill, alerts=ctx.settings.alerts)
    return ok({"refills": [status_payload(s) for s in found]})


@router.get("/addresses", responses=answers(AddressList, "AddressListAnswer"))
async def addresses(
    ctx: Ctx,
    _key: Reader,
    page: Annotated[Page, Depends(page_params)],
    protocol: ProtocolName | None = None,
    status: AddressState | None = None,
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


@router.patch(
    "/addresses/{address}/archive", responses=answers(PoolAddress, "ArchiveAnswer", 404, 409)
)
async def archive(
    ctx: Ctx, key: Writer, address: AddressText, protocol: ProtocolName | None = None
) -> Response:
    return await _set_archived(ctx, key, address, protocol, archived=True)


@router.patch(
    "/addresses/{address}/unarchive", responses=answers(PoolAddress, "UnarchiveAnswer", 404, 409)
)
async def unarchive(
    ctx: Ctx, key: Writer, address: AddressText, protocol: ProtocolName | None = None
) -> Response:
    return await _set_archived(ctx, key, address, protocol, archived=False)


async def _set_archived(
    ctx: AppContext, key: ApiKey, address: str, protocol: Protocol | None, *, archived: bool
) -> Response:
    parsed = address_parser(protocol or protocol_by_shape(address))(address)
    await archive_address(ctx.db, parsed, archived=archived, actor=key.actor)
    ctx.pool_alerts.changed(parsed.protocol)
    status = ARCHIVED if archived else AVAILABLE
    return ok({"address": parsed.text, "protocol": parsed.protocol, "status": status})


IMPORT_PATH = "/api/v1/address-pool/addresses"


@router.post(
    "/addresses",
    status_code=201,
    responses=answers(ImportSummary, "ImportAnswer", 409, success=(201, 200)),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ImportBody.model_json_schema()}},
        }
    },
)
async def import_addresses(request: Request, ctx: Ctx, key: Writer) -> Response:
    """Large imports are parsed and validated in a thread: other requests keep being served."""
    raw = await request.body()
    body, rows = await asyncio.to_thread(_parse_import, raw)
    checked = await check_rows(
        rows,
        protocol=body.protocol,
        parser=address_parser(body.protocol),
        master_keys=check_master_keys,
    )
    source = ImportSource(
        "api", key.actor, "json" if body.addresses is not None else body.format,
        hashlib.sha256(raw).hexdigest(),
    )  # fmt: skip
    report = await import_file(
        ctx.db,
        checked,
        protocol=body.protocol,
        source=source,
        skip_invalid=body.skip_invalid,
        dry_run=body.dry_run,
    )
    return _import_answer(ctx, report)


def _import_answer(ctx: AppContext, report: ImportReport, **extra: Any) -> Response:
    """201 when rows were written (and the pool's alerts look again), 200 for nothing new or a
    dry run."""
    written = bool(report.imported) and not report.dry_run
    if written:
        ctx.pool_alerts.changed(report.protocol)
    return ok({**import_view(report), **extra}, status=201 if written else 200)


def _parse_import(raw: bytes) -> tuple[ImportBody, list[RawRow]]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # A key in a broken request is still a key exposed: say so rather than "not JSON".
        refuse_secrets(secrets_in_text(raw.decode("utf-8", "replace")))
        raise ValidationFailed("Request body is not valid JSON", code="INVALID_JSON") from exc
    try:
        body = ImportBody.model_validate(payload)
    except PydanticValidationError as exc:
        raise validation_error(exc.errors()) from exc
    if (body.addresses is None) == (body.csv is None):
        raise ValidationFailed("Give exactly one of: addresses (a list), csv (text)")
    if body.addresses is not None:
        rows = item_rows(body.addresses)
    else:  # ImportBody screened the whole request for secrets: parse without a second scan
        rows = list(parse_rows(body.csv or "", format=body.format))
    return body, rows


@router.post(
    "/xpub",
    status_code=201,
    responses=answers(ImportSummary, "XpubImportAnswer", 409, success=(201, 200)),
)
async def import_from_xpub(body: XpubImportBody, ctx: Ctx, key: Writer) -> Response:
    """Derivation (tens of thousands of keys a second) runs in a thread, off the event loop."""
    account = parse_extended_public_key(body.xpub)
    derived = await asyncio.to_thread(
        derive_addresses,
        account,
        protocol=body.protocol,
        branch=body.branch,
        start=body.start,
        count=body.count,
    )
    report = await import_xpub(
        ctx.db,
        protocol=body.protocol,
        account=AccountKey(account.serialize(), account.fingerprint),
        derived=derived,
        actor=key.actor,
        dry_run=body.dry_run,
    )
    return _import_answer(ctx, report, fingerprint=account.fingerprint)
