"""Reconciliation: what the chain says, what addrpool recorded and announced, what receivers
acknowledged (docs/design.md, Reconciliation).

This module holds the comparisons that need no chain (pure functions over rows), the repairs
that only touch the database, and the report. Reading the chain is `chains/checks/audit.py`'s job,
running it all `chains/checks/reconciler.py`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts.repository import fire_alert, firing_details, resolve_alert
from pool.deposits.payloads import deposit_payload
from pool.deposits.repository import deposits_by_ids
from pool.kit.clock import isoformat_z
from pool.orders import reconcile_repository as orders_repo
from pool.reconciliation import repository as repo
from pool.reconciliation.categories import CATEGORIES as CATEGORIES
from pool.reconciliation.categories import LINK_INVENTORY as LINK_INVENTORY
from pool.reconciliation.categories import Category as Category
from pool.vocabulary import (
    CONFIRMED,
    DEPOSIT_CONFIRMED,
    DUST,
    PENDING,
    RECONCILIATION_DISCREPANCY,
    RESOLUTION_OUTCOMES,
    AlertKind,
)
from pool.webhooks.events_repository import insert_events
from pool.webhooks.outbox import new_event_id

ALERT_KIND: AlertKind = RECONCILIATION_DISCREPANCY
ITEMS_PER_CATEGORY = 1000


@dataclass(frozen=True, slots=True)
class Finding:
    category: str
    chain_id: str
    detail: str
    deposit_id: str | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    # What to key the alert on: the deposit, a chain range for coverage gaps, an order or an
    # order event.
    key: str = ""
    order_id: str | None = None

    @property
    def subject(self) -> str:
        return f"reconciliation:{self.category}:{self.key or self.deposit_id}"

    @property
    def severity(self) -> str:
        return CATEGORIES[self.category].severity

    def view(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "severity": self.severity,
            "depositId": self.deposit_id,
            "orderId": self.order_id,
            "chainId": self.chain_id,
            "txHash": self.tx_hash,
            "blockNumber": self.block_number,
            "detail": self.detail,
        }


def of_deposit(category: str, row: repo.LedgerDeposit, detail: str) -> Finding:
    return Finding(
        category=category,
        chain_id=row.chain_id,
        detail=detail,
        deposit_id=row.id,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
    )


# -- what the database alone can tell ------------------------------------------------------


@dataclass(slots=True)
class LedgerCheck:
    findings: list[Finding] = field(default_factory=list)
    # deposit.confirmed events whose failed deliveries may be sent again
    unacknowledged_events: list[int] = field(default_factory=list)
    # confirmed, attributed deposits with no deposit.confirmed event
    unannounced: list[str] = field(default_factory=list)


def due_for_acknowledgement(
    deposits: Iterable[repo.LedgerDeposit], *, now: datetime, grace: timedelta
) -> list[repo.LedgerDeposit]:
    """Attributed deposits confirmed longer ago than the grace: receivers should have answered."""
    return [
        row
        for row in deposits
        if row.attributed
        and row.status == CONFIRMED
        and row.confirmed_at is not None
        and now - row.confirmed_at >= grace
    ]


def check_ledger(
    deposits: Iterable[repo.LedgerDeposit],
    announced: repo.Announced,
    *,
    now: datetime,
    grace: timedelta,
    stuck_after: Mapping[str, timedelta],
) -> LedgerCheck:
    check = LedgerCheck()
    for row in deposits:
        _check_deposit(row, announced, now, grace, stuck_after, check)
    return check


def _check_deposit(
    row: repo.LedgerDeposit,
    announced: repo.Announced,
    now: datetime,
    grace: timedelta,
    stuck_after: Mapping[str, timedelta],
    check: LedgerCheck,
) -> None:
    if row.order_id is not None and not row.attributed:
        return  # an order's transfer: no binding and no deposit event by design (design.md)
    # An operator refunded or ignored it (pool/deposits/resolution.py): nothing left to report.
    settled = row.resolution in RESOLUTION_OUTCOMES
    if not row.attributed:
        if row.status != DUST and not settled:
            check.findings.append(of_deposit("unattributed", row, f"{row.status}, no binding"))
        return
    if row.late and not settled:
        check.findings.append(of_deposit("late", row, "credited to the address's last holder"))
    limit = stuck_after.get(row.chain_id)
    if row.status == PENDING and limit is not None and now - row.detected_at > limit:
        waited = int((now - row.detected_at).total_seconds())
        check.findings.append(of_deposit("stuck_pending", row, f"pending for {waited} s"))
    if row.status != CONFIRMED or row.confirmed_at is None or now - row.confirmed_at < grace:
        return  # completed = every receiver acknowledged; anything else is not yet due
    events = announced.of(row.id, DEPOSIT_CONFIRMED)
    if not events:
        check.unannounced.append(row.id)
        check.findings.append(of_deposit("not_announced", row, "no deposit.confirmed event"))
        return
    waiting = [a for a in events if a.unacknowledged > 0]
    if waiting:
        failed = sum(a.failed for a in waiting)
        open_ = sum(a.unacknowledged for a in waiting)
        detail = f"{open_} delivery(ies) not acknowledged ({failed} failed)"
        check.findings.append(of_deposit("not_acknowledged", row, detail))
        check.unacknowledged_events.extend(a.seq for a in waiting if a.failed)
    elif all(a.deliveries == 0 for a in events):
        check.findings.append(of_deposit("no_receiver", row, "no endpoint subscribed"))


_UPSTREAM_CATEGORY = {
    "mismatched": "upstream_mismatch",
    "not_on_chain": "upstream_not_on_chain",
    "not_seen": "upstream_not_seen",
    "missed": "upstream_not_seen",
    "order_unknown": "upstream_order_unknown",
    "order_unpaid": "upstream_order_unpaid",
    "order_paid": "upstream_order_paid",
}


def check_upstream(
    unannounced: Iterable[repo.LedgerDeposit], unresolved: Iterable[Mapping[str, Any]]
) -> list[Finding]:
    """Upstream mode: PayIn's claims that did not check out, and our deposits it never claimed."""
    findings = []
    for event in unresolved:
        data = (event.get("payload") or {}).get("data") or {}
        findings.append(
            Finding(
                category=_UPSTREAM_CATEGORY[event["status"]],
                chain_id=str(data.get("chainId")),
                detail=f"PayIn event {event['event_id']}: {event['reason']}",
                deposit_id=event.get("deposit_id"),
                tx_hash=data.get("txHash"),
                key=str(event["event_id"]),
                order_id=data.get("orderId"),
            )
        )
    for row in unannounced:
        findings.append(of_deposit("upstream_unannounced", row, "no matching PayIn event"))
    return findings


def coverage_gaps(
    heights: Sequence[int], *, cursor: int, head: int | None, window: int
) -> list[tuple[int, int]]:
    """Heights the watcher should hold in its block window but does not: never scanned.

    The watcher stores every height within `window` of the head it saw (Invariant 7), so
    between the window's low end and the cursor a missing height is a hole in coverage —
    a cursor moved by hand, or a bug. Below the window nothing can be told from the window.
    """
    if not heights:
        return []  # nothing stored yet: nothing to tell from
    top = cursor
    low = max(heights[0], (head if head is not None else cursor) - window + 1)
    present = set(heights)
    gaps: list[tuple[int, int]] = []
    start: int | None = None
    for number in range(low, top + 1):
        if number not in present and start is None:
            start = number
        elif number in present and start is not None:
            gaps.append((start, number - 1))
            start = None
    if start is not None:
        gaps.append((start, top))
    return gaps


# -- repairs that only touch the database --------------------------------------------------


async def announce_confirmed(
    conn: AsyncConnection, deposit_ids: Sequence[str], now: datetime
) -> int:
    """Write the deposit.confirmed events that are missing, with their deliveries."""
    rows = await deposits_by_ids(conn, deposit_ids)
    events = [
        (new_event_id(), DEPOSIT_CONFIRMED, deposit_payload(rows[i]))
        for i in deposit_ids
        if i in rows and rows[i].status == CONFIRMED
    ]
    await insert_events(conn, events=events, now=now)
    return len(events)


@dataclass(slots=True)
class AlertChanges:
    fired: int = 0
    resolved: int = 0


async def sync_alerts(
    conn: AsyncConnection,
    findings: Sequence[Finding],
    *,
    chains: set[str],
    since: datetime,
    now: datetime,
    max_new: int = 200,
) -> AlertChanges:
    """One alert episode per discrepancy; episodes whose discrepancy is gone are resolved.

    Only episodes this run could have seen again are resolved: about a deposit of the window,
    or a chain it checked. One about an older deposit, or another chain, is left as it is.
    """
    changes = AlertChanges()
    current = {f.subject: f for f in findings if f.severity != "info"}
    for subject, finding in current.items():
        if changes.fired >= max_new:
            break  # the report lists them all; a storm of records helps nobody
        changes.fired += await fire_alert(
            conn,
            kind=ALERT_KIND,
            subject=subject,
            severity=finding.severity,
            value=finding.category,
            details=finding.view(),
            now=now,
        )
    episodes = await firing_details(conn, ALERT_KIND)
    ids = [str(d["depositId"]) for _, d in episodes if d.get("depositId")]
    recent = await repo.in_window(conn, deposit_ids=ids, since=since)
    order_ids = [str(d["orderId"]) for _, d in episodes if _about_an_order(d)]
    recent_orders = await orders_repo.created_since(conn, order_ids=order_ids, since=since)
    for subject, details in episodes:
        deposit_id = details.get("depositId")
        if _about_an_order(details):
            # Only an order of the window was checked again: an older one's episode stays.
            seen = details["orderId"] in recent_orders and details.get("chainId") in chains
        elif details.get("category") == LINK_INVENTORY:
            seen = True
        else:
            seen = deposit_id in recent if deposit_id else details.get("chainId") in chains
        if subject not in current and seen:
            changes.resolved += await resolve_alert(conn, subject=subject, now=now)
    return changes


def _about_an_order(details: Mapping[str, Any]) -> bool:
    """An episode of reconciliation's look at orders (pool/reconciliation/orders.py)."""
    return bool(details.get("orderId")) and str(details.get("category", "")).startswith("order_")


# -- the report -----------------------------------------------------------------------------


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    tally = dict.fromkeys(CATEGORIES, 0)
    for finding in findings:
        tally[finding.category] += 1
    return tally


def report_items(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """The findings, worst first, at most ITEMS_PER_CATEGORY of each (counts stay exact)."""
    order = {name: i for i, name in enumerate(CATEGORIES)}
    kept: dict[str, int] = {}
    items: list[dict[str, Any]] = []
    for finding in sorted(findings, key=lambda f: (order[f.category], f.chain_id, f.key or "")):
        if kept.get(finding.category, 0) < ITEMS_PER_CATEGORY:
            kept[finding.category] = kept.get(finding.category, 0) + 1
            items.append(finding.view())
    return items


def discrepancies(tally: Mapping[str, int]) -> int:
    return sum(n for name, n in tally.items() if CATEGORIES[name].severity != "info")


def report_view(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored report as the API and `--json` show it."""
    return {
        "id": stored["id"],
        "startedAt": isoformat_z(stored["started_at"]),
        "finishedAt": isoformat_z(stored["finished_at"]),
        "since": isoformat_z(stored["since"]),
        **stored["summary"],
        "items": stored["items"],
    }
