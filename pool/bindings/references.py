"""Deposit references: the active binding of a reference with what it has received."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.bindings import repository as bindings
from pool.bindings.records import Binding
from pool.deposits.repository import credited_totals
from pool.kit.amounts import sum_in_units
from pool.kit.errors import NotFound
from pool.vocabulary import Protocol


@dataclass(frozen=True, slots=True)
class ReferenceTotals:
    count: int
    # Every watched token is a USD stablecoin, so one sum across currencies is meaningful.
    total_amount: str
    by_currency: dict[str, str]


@dataclass(frozen=True, slots=True)
class ReferenceView:
    binding: Binding
    totals: ReferenceTotals
    history: list[Binding]


async def totals_for(
    conn: AsyncConnection, *, protocol: Protocol, references: Sequence[str]
) -> dict[str, ReferenceTotals]:
    raw = await credited_totals(conn, protocol=protocol, references=references)
    result: dict[str, ReferenceTotals] = {}
    for reference in references:
        per_currency: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for currency, decimals, amount in raw.get(reference, []):
            per_currency[currency].append((amount, decimals))
        every_part = [part for parts in per_currency.values() for part in parts]
        by_currency = {c: sum_in_units(parts) for c, parts in sorted(per_currency.items())}
        result[reference] = ReferenceTotals(len(every_part), sum_in_units(every_part), by_currency)
    return result


async def get_reference(
    conn: AsyncConnection, *, reference: str, protocol: Protocol | None
) -> ReferenceView:
    active = await bindings.active_bindings(conn, reference=reference, protocol=protocol)
    if not active:
        raise NotFound(
            f"No active binding for deposit reference {reference!r}", code="REFERENCE_NOT_FOUND"
        )
    current = active[0].binding
    totals = await totals_for(conn, protocol=current.protocol, references=[reference])
    history = await bindings.reference_history(conn, reference=reference, protocol=current.protocol)
    return ReferenceView(current, totals[reference], history)


async def list_references(
    conn: AsyncConnection,
    *,
    protocol: Protocol | None,
    search: str | None,
    offset: int,
    limit: int,
) -> tuple[list[tuple[Binding, ReferenceTotals]], int]:
    """Active bindings, a page at a time, each with its credited totals."""
    rows, total = await bindings.list_active_references(
        conn, protocol=protocol, search=search, offset=offset, limit=limit
    )
    totals: dict[tuple[Protocol, str], ReferenceTotals] = {}
    for each_protocol in {b.protocol for b in rows}:
        refs = [b.deposit_reference for b in rows if b.protocol == each_protocol]
        found = await totals_for(conn, protocol=each_protocol, references=refs)
        totals.update({(each_protocol, ref): t for ref, t in found.items()})
    return [(b, totals[(b.protocol, b.deposit_reference)]) for b in rows], total
