"""Reconciliation's look at orders (docs/operations.md, Reconciliation): pure comparisons over
the rows `pool/orders/reconcile_repository.py` reads.

- A completed order must hold confirmed payments reaching its amount. Payments the chain
  re-read disputed this run (`CHAIN_DISPUTES`) do not count: the chain does not vouch for them.
- An expired order must not hold confirmed transfers of its token mined in time (block time
  within [creation second, grace end]) reaching its amount: invariant 14 says such a payer is
  never expired. A late-labelled transfer whose block time fits counts too (mislabelled).
- A payment link's reserved and sold units must be its pending and completed orders
  (invariant 16): checked over every link, each run.
- Every `order.*` event must be acknowledged by each receiver within the grace period, as a
  `deposit.confirmed` must (`not_acknowledged`); failed deliveries are sent again the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pool.kit.amounts import format_units
from pool.orders.link_inventory_repository import LinkCount
from pool.orders.reconcile_repository import EndedOrder, OrderAnnouncement, PaidTransfer
from pool.reconciliation.service import LINK_INVENTORY, Finding
from pool.vocabulary import COMPLETED, CREDITED, EXPIRED, PAYMENT

# What the chain re-read (chains/checks/audit.py) says against a recorded transfer.
CHAIN_DISPUTES = frozenset({"not_canonical", "receipt_missing", "receipt_failed", "mismatch"})


def disputed_deposits(findings: Iterable[Finding]) -> set[str]:
    return {
        f.deposit_id for f in findings if f.category in CHAIN_DISPUTES and f.deposit_id is not None
    }


def in_time(order: EndedOrder, transfer: PaidTransfer) -> bool:
    """pool/orders/payloads.py `payment_moment_fits`, on reconciliation's rows."""
    if transfer.block_time is None:
        return False  # recorded before block times were: nothing to tell from
    return order.created_at.replace(microsecond=0) <= transfer.block_time <= order.grace_ends_at


def _counted(
    transfers: Sequence[PaidTransfer], disputed: Collection[str], *, order: EndedOrder
) -> list[PaidTransfer]:
    """Confirmed transfers the chain did not dispute: for a completed order its payments, for
    an expired one every transfer of its token mined in time."""
    confirmed = [t for t in transfers if t.status in CREDITED and t.deposit_id not in disputed]
    if order.status == COMPLETED:
        return [t for t in confirmed if t.role == PAYMENT]
    return [t for t in confirmed if in_time(order, t)]


def check_orders(
    orders: Iterable[EndedOrder],
    transfers: Mapping[str, Sequence[PaidTransfer]],
    *,
    disputed: Collection[str] = (),
) -> list[Finding]:
    findings = []
    for order in orders:
        counted = _counted(transfers.get(order.id, ()), disputed, order=order)
        received = sum(t.amount for t in counted)
        total = format_units(order.amount, order.decimals)
        shown = f"{format_units(received, order.decimals)} of {total} {order.currency}"
        if order.status == COMPLETED and received < order.amount:
            findings.append(
                _of_order("order_underpaid", order, f"completed with {shown} confirmed on chain")
            )
        elif order.status == EXPIRED and counted and received >= order.amount:
            last = counted[-1]
            findings.append(
                _of_order(
                    "order_paid_but_expired",
                    order,
                    f"expired, yet {shown} confirmed, mined in time",
                    last,
                )
            )
    return findings


def _of_order(
    category: str, order: EndedOrder, detail: str, transfer: PaidTransfer | None = None
) -> Finding:
    return Finding(
        category=category,
        chain_id=order.chain_id,
        detail=detail,
        tx_hash=None if transfer is None else transfer.tx_hash,
        block_number=None if transfer is None else transfer.block_number,
        key=order.id,
        order_id=order.id,
    )


@dataclass(slots=True)
class EventCheck:
    findings: list[Finding] = field(default_factory=list)
    # order events whose failed deliveries may be sent again
    failed_events: list[int] = field(default_factory=list)


def check_order_events(
    announcements: Iterable[OrderAnnouncement], *, chain_ids: Collection[str]
) -> EventCheck:
    """Each unacknowledged `order.*` event of a checked chain (the repository has applied the
    grace: only events older than it are read)."""
    check = EventCheck()
    for event in announcements:
        if event.unacknowledged <= 0 or event.chain_id not in chain_ids:
            continue
        detail = (
            f"{event.type} {event.event_id}: {event.unacknowledged} delivery(ies) not "
            f"acknowledged ({event.failed} failed)"
        )
        check.findings.append(
            Finding(
                category="order_not_acknowledged",
                chain_id=str(event.chain_id),
                detail=detail,
                key=event.event_id,
                order_id=event.order_id,
            )
        )
        if event.failed:
            check.failed_events.append(event.seq)
    return check


def check_link_inventory(counts: Iterable[LinkCount]) -> list[Finding]:
    """A payment link whose inventory counters disagree with its orders (invariant 16)."""
    return [
        Finding(
            category=LINK_INVENTORY,
            chain_id="",
            detail=(
                f"payment link {count.link_id}: {count.reserved} reserved for "
                f"{count.pending_orders} pending order(s), {count.sold} sold for "
                f"{count.completed_orders} completed order(s)"
            ),
            key=count.link_id,
        )
        for count in counts
    ]
