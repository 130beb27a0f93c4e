"""Reconciliation's categories of discrepancy: what each means and how loud it is (docs/
operations.md, Reconciliation)."""

from __future__ import annotations

from dataclasses import dataclass

LINK_INVENTORY = "link_inventory_mismatch"  # checked over every link on each run


@dataclass(frozen=True, slots=True)
class Category:
    severity: str  # critical | warning | info; info is reported, never alerted
    meaning: str


CATEGORIES: dict[str, Category] = {
    "not_canonical": Category(
        "critical", "announced confirmed, but its block is no longer on the canonical chain"
    ),
    "receipt_missing": Category(
        "critical", "recorded, but the node has no receipt for it in the recorded block"
    ),
    "receipt_failed": Category("critical", "recorded, but its transaction failed on chain"),
    "mismatch": Category(
        "critical", "the Transfer log at that index differs in token, recipient or amount"
    ),
    "coverage_gap": Category("critical", "blocks below the cursor that the watcher never scanned"),
    "not_announced": Category(
        "critical", "confirmed and attributed, but no deposit.confirmed event was written"
    ),
    "not_acknowledged": Category(
        "warning", "confirmed, but not every receiver acknowledged it within the grace period"
    ),
    "stuck_pending": Category(
        "warning", "pending far longer than the chain's confirmation time (a stuck watcher?)"
    ),
    "upstream_mismatch": Category(
        "critical", "PayIn announced a deposit we recorded differently (address, token, amount)"
    ),
    "upstream_not_on_chain": Category(
        "critical", "PayIn announced a deposit whose transaction is not on chain"
    ),
    "upstream_not_seen": Category("warning", "PayIn announced a deposit our watcher has not seen"),
    "upstream_unannounced": Category(
        "warning", "we recorded a confirmed deposit PayIn has not announced within its grace"
    ),
    "upstream_order_unknown": Category(
        "critical", "PayIn announced an order's end for an order not recorded here"
    ),
    "upstream_order_unpaid": Category(
        "critical", "PayIn completed an order we have not seen paid in its time"
    ),
    "upstream_order_paid": Category(
        "critical", "PayIn expired or cancelled an order we saw paid in its time"
    ),
    "order_underpaid": Category(
        "critical", "a completed order whose confirmed on-chain payments fall short of its amount"
    ),
    "order_paid_but_expired": Category(
        "critical", "an expired order whose payments mined in time, confirmed, reach its amount"
    ),
    "order_not_acknowledged": Category(
        "warning", "an order event not every receiver acknowledged within the grace period"
    ),
    LINK_INVENTORY: Category(
        "critical", "a payment link's reserved or sold units differ from its orders"
    ),
    "pool_count_mismatch": Category("warning", "a kept count differs from a full count"),
    "unattributed": Category("info", "sent to a pool address nobody held (no credit)"),
    "late": Category("info", "sent to a cooling-down address: credited to its last reference"),
    "no_receiver": Category("info", "confirmed while no webhook endpoint was subscribed"),
}
