"""`addrpool orders list|show|cancel`: payment orders without curl.

`--json` prints exactly the `data` of the matching API answer (GET /api/v1/orders,
/orders/{orderId}, /orders/by-reference/{ref}, POST /orders/{orderId}/cancel): the same payload
functions build both.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from pool.kit.clock import parse_moment, utc_now
from pool.kit.config import Settings, load_settings
from pool.kit.db import Database
from pool.kit.errors import ValidationFailed
from pool.kit.paging import pagination
from pool.orders import service as orders
from pool.orders.listing_repository import OrderFilters, list_orders
from pool.orders.payloads import order_payloads
from pool.upstream.client import UpstreamClient
from pool.upstream.orders import cancel_order_through_upstream
from scripts.cli.database import opened_database
from scripts.cli.output import Output, table

_LISTED = ("orderId", "orderReference", "status", "chainId", "currency", "amount")


async def orders_list(args: argparse.Namespace, out: Output) -> int:
    now = utc_now()
    filters = OrderFilters(
        statuses=tuple(args.status or ()),
        chain_id=args.chain,
        currency=args.currency,
        order_reference=args.reference,
        created_after=_moment(args.created_after, "--created-after", now),
        created_before=_moment(args.created_before, "--created-before", now),
    )
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        rows, total = await list_orders(
            conn, filters=filters, offset=(args.page - 1) * args.limit, limit=args.limit
        )
        payloads = await order_payloads(conn, [row.id for row in rows])
    data = {
        "orders": [payloads[row.id] for row in rows],
        "pagination": pagination(page=args.page, limit=args.limit, total=total),
    }
    out.result(data, _orders_text(data))
    return 0


def _moment(value: str | None, option: str, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_moment(value, now=now)
    except ValueError as exc:
        raise ValidationFailed(f"{option}: {exc}") from None


def _orders_text(data: dict[str, Any]) -> str:
    page = data["pagination"]
    if not data["orders"]:
        return f"no orders (page {page['page']}; {page['total']:,} in all)"
    rows = [
        [*(str(o[k]) for k in _LISTED), o["confirmedReceived"], o["createdAt"]]
        for o in data["orders"]
    ]
    header = ["id", "reference", "status", "chain", "currency", "amount", "received", "created"]
    footer = (
        f"page {page['page']} of {max(page['totalPages'], 1)}; {page['total']:,} order(s) "
        "(--page, --limit)"
    )
    return f"{table(rows, header)}\n{footer}"


async def orders_show(args: argparse.Namespace, out: Output) -> int:
    if (args.order_id is None) == (args.reference is None):
        raise ValidationFailed("name one order: its orderId, or --reference REF")
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        if args.reference is not None:
            data = await orders.get_order_by_reference(conn, args.reference)
        else:
            data = await orders.get_order(conn, args.order_id)
    out.result(data, _order_text(data))
    return 0


async def orders_cancel(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    async with opened_database(settings, existing=True) as db:
        if settings.binding_backend == "payin" and settings.upstream_url:
            data, cancelled = await _cancel_through_upstream(settings, db, args.order_id)
        else:
            data, cancelled = await orders.cancel_order(
                db, order_id=args.order_id, cooldown=settings.orders.cooldown
            )
    said = "cancelled" if cancelled else "was already cancelled"
    out.result(data, f"order {data['orderId']} {said}; its address cools down until reuse")
    return 0


async def _cancel_through_upstream(
    settings: Settings, db: Database, order_id: str
) -> tuple[dict[str, Any], bool]:
    """Upstream mode: PayIn's cancel first, then ours, as the API does (a local cancel alone
    would leave the order open at PayIn)."""
    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else ""
    client = UpstreamClient(
        str(settings.upstream_url),
        key,
        timeout=settings.upstream_timeout,
        retries=settings.upstream_retries,
    )
    try:
        return await cancel_order_through_upstream(
            db, client, order_id=order_id, cooldown=settings.orders.cooldown
        )
    finally:
        await client.close()


def _order_text(data: dict[str, Any]) -> str:
    lists = ("transfers", "latePayments", "otherPayments")
    summary = {k: v for k, v in data.items() if k not in lists}
    width = max(len(k) for k in summary)
    lines = [f"{k.ljust(width)}  {'-' if v is None else v}" for k, v in summary.items()]
    for name in lists:
        rows = [
            [t["depositId"], t["txHash"], t["amount"], str(t["confirmations"]), t["status"]]
            for t in data[name]
        ]
        if rows:
            header = ["deposit", "tx", "amount", "conf", "status"]
            lines += ["", f"{name}:", table(rows, header)]
    return "\n".join(lines)
