"""`GET /api/v1/orders/stats` (docs/api.md, Orders): counts per status, what the completed
orders asked for and received, per chain and per currency, exact across decimals (USDT has 6
on Ethereum and 18 on BSC)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.amounts import sum_in_units
from pool.orders.listing_repository import (
    StatsGroup,
    average_payment_seconds,
    order_groups,
    received_by_completed_orders,
)
from pool.vocabulary import COMPLETED, ORDER_STATUSES

Received = tuple[str, str, int, int]  # chain, currency, decimals, base units


async def order_stats(conn: AsyncConnection) -> dict[str, Any]:
    groups = await order_groups(conn)
    received = await received_by_completed_orders(conn)
    stats = _counts(groups, received)
    stats["avgPaymentTimeSeconds"] = await average_payment_seconds(conn)
    stats["byChain"] = _split(groups, received, lambda chain, _currency: chain)
    stats["byCurrency"] = _split(groups, received, lambda _chain, currency: currency)
    return stats


def _split(
    groups: Sequence[StatsGroup], received: Sequence[Received], key: Callable[[str, str], str]
) -> dict[str, dict[str, Any]]:
    names = sorted({key(g.chain_id, g.currency) for g in groups})
    return {
        name: _counts(
            [g for g in groups if key(g.chain_id, g.currency) == name],
            [r for r in received if key(r[0], r[1]) == name],
        )
        for name in names
    }


def _counts(groups: Sequence[StatsGroup], received: Sequence[Received]) -> dict[str, Any]:
    counts: dict[str, Any] = {"totalOrders": sum(g.count for g in groups)}
    for status in ORDER_STATUSES:
        counts[f"{status}Orders"] = sum(g.count for g in groups if g.status == status)
    completed: dict[str, list[tuple[int, int]]] = {}
    for g in groups:
        if g.status == COMPLETED:
            completed.setdefault(g.currency, []).append((g.amount, g.decimals))
    got: dict[str, list[tuple[int, int]]] = {}
    for _chain, currency, decimals, amount in received:
        got.setdefault(currency, []).append((amount, decimals))
    counts["completedAmount"] = {c: sum_in_units(p) for c, p in sorted(completed.items())}
    counts["receivedAmount"] = {c: sum_in_units(p) for c, p in sorted(got.items())}
    return counts
