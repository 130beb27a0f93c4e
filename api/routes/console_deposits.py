"""The console's deposits page (docs/operations.md, The console): every deposit, filtered by
status, chain, token, reference, unattributed, late and detection time, a page at a time, and
the same selection as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.console.access import Signed, acting_form, message, redirect, show
from api.context import AppContext, context
from api.pages import PAGE_HEADERS
from pool.console.service import Session
from pool.deposits import resolution
from pool.deposits.payloads import deposit_payload
from pool.deposits.repository import DepositFilters, DepositRow, deposits_in_order, list_deposits
from pool.kit.errors import AddrpoolError
from pool.kit.paging import pagination
from pool.vocabulary import DEPOSIT_STATUSES

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
PER_PAGE = 50
DepositId = Annotated[str, Path(max_length=64, pattern=r"^dep_[A-Za-z0-9]+$")]
MAX_EXPORT = 100_000  # rows in one CSV: a wider export belongs to the API's pages
CSV_COLUMNS = (
    "depositId",
    "depositReference",
    "address",
    "protocol",
    "chainId",
    "currency",
    "amount",
    "txHash",
    "logIndex",
    "tracePosition",  # the chain's coin: "tx", or "tx.0.1" inside it (logIndex empty)
    "blockNumber",
    "from",
    "confirmations",
    "status",
    "late",
    "detectedAt",
    "confirmedAt",
    "completedAt",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Shown:
    """The page's filters as given (what the form shows again) and as the query uses them."""

    def __init__(self, params: dict[str, str]) -> None:
        self.params = params
        status = params.get("status") or None
        self.filters = DepositFilters(
            deposit_reference=params.get("reference") or None,
            status=status if status in DEPOSIT_STATUSES else None,
            chain_id=params.get("chain") or None,
            currency=params.get("token") or None,
            unattributed=params.get("unattributed") == "on",
            late=params.get("late") == "on",
            detected_after=_day(params.get("from")),
            detected_before=_day(params.get("until")),
        )

    def query(self) -> str:
        return urlencode({k: v for k, v in self.params.items() if v}) + "&"


def _day(text: str | None) -> datetime | None:
    """`YYYY-MM-DD` as that day's start in UTC; anything else is no bound."""
    try:
        return datetime.strptime(text or "", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


Text = Annotated[str | None, Query(max_length=255)]
Day = Annotated[str | None, Query(max_length=10)]


def selection(
    status: Text = None,
    chain: Text = None,
    token: Text = None,
    reference: Text = None,
    unattributed: Text = None,
    late: Text = None,
    since: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: Day = None,
) -> Shown:
    """The page's and the export's query parameters."""
    values = {
        "status": status,
        "chain": chain,
        "token": token,
        "reference": reference,
        "unattributed": unattributed,
        "late": late,
        "from": since,
        "until": until,
    }
    return Shown({k: v for k, v in values.items() if v})


Selection = Annotated[Shown, Depends(selection)]


@router.get("/ui/deposits")
async def deposits_page(
    ctx: Ctx,
    session: Signed,
    shown: Selection,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    async with ctx.db.read() as conn:
        rows, total = await list_deposits(
            conn, filters=shown.filters, offset=(page_number - 1) * PER_PAGE, limit=PER_PAGE
        )
    return show(
        "deposits.html",
        session,
        ctx,
        "/ui/deposits",
        deposits=[deposit_payload(row) for row in rows],
        pages=pagination(page=page_number, limit=PER_PAGE, total=total),
        params=shown.params,
        query=shown.query(),
        statuses=DEPOSIT_STATUSES,
    )


@router.get("/ui/deposits.csv")
async def deposits_csv(ctx: Ctx, _session: Signed, shown: Selection) -> Response:
    headers = {
        **PAGE_HEADERS,
        "Content-Disposition": 'attachment; filename="deposits.csv"',
    }
    return StreamingResponse(
        _csv_lines(ctx, shown.filters), media_type="text/csv; charset=utf-8", headers=headers
    )


async def _csv_lines(ctx: AppContext, filters: DepositFilters) -> AsyncIterator[str]:
    """The header, then the rows as the database streams them (a server-side cursor on
    PostgreSQL): memory stays flat whatever the export's size, up to MAX_EXPORT rows."""
    yield _line(CSV_COLUMNS)
    async with ctx.db.read() as conn:
        result = await conn.stream(deposits_in_order(filters).limit(MAX_EXPORT))
        async for rows in result.partitions(1000):
            yield "".join(_line(_cells(deposit_payload(DepositRow(*row)))) for row in rows)


def _cells(shown: dict[str, Any]) -> list[str]:
    return [_cell(shown[column]) for column in CSV_COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _line(cells: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


@router.post("/ui/deposits/{deposit_id}/attribute")
async def attribute_deposit(
    request: Request, ctx: Ctx, session: Signed, deposit_id: DepositId
) -> Response:
    """Credit an unclaimed deposit to a bound reference (its deposit.* events follow)."""

    async def act(form: dict[str, str]) -> None:
        await resolution.attribute(
            ctx.db,
            deposit_id,
            form.get("reference", "").strip(),
            session.actor,
            form["reason"],
            via="console",
        )

    return await _decide(request, ctx, session, act)


@router.post("/ui/deposits/{deposit_id}/resolve")
async def resolve_deposit(
    request: Request, ctx: Ctx, session: Signed, deposit_id: DepositId
) -> Response:
    """Record an unclaimed deposit as refunded or ignored, with the reason as its note."""

    async def act(form: dict[str, str]) -> None:
        await resolution.resolve(
            ctx.db,
            deposit_id,
            form.get("outcome", ""),
            session.actor,
            form["reason"],
            via="console",
        )

    return await _decide(request, ctx, session, act)


async def _decide(
    request: Request,
    ctx: AppContext,
    session: Session,
    act: Callable[[dict[str, str]], Awaitable[None]],
) -> Response:
    form = await acting_form(request, ctx, session)
    if isinstance(form, Response):
        return form
    try:
        await act(form)
    except AddrpoolError as refused:
        return message(session, ctx, "Refused", refused.message, refused.status)
    return redirect("/ui/deposits?unattributed=on")
