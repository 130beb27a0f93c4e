"""Reconciliation's order comparisons (pool/reconciliation/orders.py): pure functions over rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pool.orders.reconcile_repository import EndedOrder, OrderAnnouncement, PaidTransfer
from pool.reconciliation.orders import (
    check_order_events,
    check_orders,
    disputed_deposits,
    in_time,
)
from pool.reconciliation.service import Finding, counts, discrepancies

CREATED = datetime(2026, 11, 22, 12, 0, 0, 400_000, tzinfo=UTC)
COMPLETED_ORDER = EndedOrder(
    id="ord_1",
    chain_id="chain",
    status="completed",
    amount=5_000_000,
    decimals=6,
    currency="USDT",
    created_at=CREATED,
    grace_ends_at=CREATED + timedelta(minutes=15),
    completed_by="dep_1",
)
EXPIRED_ORDER = replace(COMPLETED_ORDER, id="ord_2", status="expired", completed_by=None)


def paid(deposit_id: str, amount: int, **changes: object) -> PaidTransfer:
    transfer = PaidTransfer(
        order_id="ord_1",
        deposit_id=deposit_id,
        role="payment",
        status="confirmed",
        amount=amount,
        block_time=CREATED + timedelta(minutes=1),
        tx_hash="0x" + deposit_id,
        block_number=100,
    )
    return replace(transfer, **changes)  # type: ignore[arg-type]


def found(
    order: EndedOrder, *transfers: PaidTransfer, disputed: frozenset[str] = frozenset()
) -> list[str]:
    findings = check_orders([order], {order.id: list(transfers)}, disputed=disputed)
    assert all(f.order_id == order.id and f.key == order.id for f in findings)
    return [f.category for f in findings]


def test_a_completed_order_paid_in_full_is_clean() -> None:
    assert found(COMPLETED_ORDER, paid("dep_1", 5_000_000)) == []
    assert found(COMPLETED_ORDER, paid("dep_1", 2_000_000), paid("dep_2", 3_000_000)) == []
    assert found(COMPLETED_ORDER, paid("dep_1", 9_000_000)) == []  # overpaid completes too


def test_a_completed_order_short_of_its_amount_is_underpaid() -> None:
    assert found(COMPLETED_ORDER) == ["order_underpaid"]
    assert found(COMPLETED_ORDER, paid("dep_1", 4_999_999)) == ["order_underpaid"]
    [finding] = check_orders([COMPLETED_ORDER], {"ord_1": [paid("dep_1", 4_000_000)]})
    assert finding.detail == "completed with 4 of 5 USDT confirmed on chain"
    assert finding.subject == "reconciliation:order_underpaid:ord_1"
    assert finding.view()["orderId"] == "ord_1" and finding.severity == "critical"


def test_only_confirmed_undisputed_payments_count_for_a_completed_order() -> None:
    assert found(COMPLETED_ORDER, paid("dep_1", 5_000_000, status="pending")) == ["order_underpaid"]
    assert found(COMPLETED_ORDER, paid("dep_1", 5_000_000, status="reverted")) == [
        "order_underpaid"
    ]
    assert found(COMPLETED_ORDER, paid("dep_1", 5_000_000, status="completed")) == []
    # A late payment never completes an order.
    assert found(COMPLETED_ORDER, paid("dep_1", 5_000_000, role="late")) == ["order_underpaid"]
    # The chain re-read disputes it: the chain does not vouch for it.
    assert found(COMPLETED_ORDER, paid("dep_1", 5_000_000), disputed=frozenset({"dep_1"})) == [
        "order_underpaid"
    ]


def test_an_expired_order_paid_in_time_is_a_discrepancy() -> None:
    assert found(EXPIRED_ORDER) == []
    assert found(EXPIRED_ORDER, paid("dep_1", 4_000_000)) == []  # short: rightly expired
    assert found(EXPIRED_ORDER, paid("dep_1", 5_000_000)) == ["order_paid_but_expired"]
    # Labelled late, yet mined before the grace end: it counts (the label is the bug).
    assert found(EXPIRED_ORDER, paid("dep_1", 5_000_000, role="late")) == ["order_paid_but_expired"]
    [finding] = check_orders([EXPIRED_ORDER], {"ord_2": [paid("dep_1", 5_000_000)]})
    assert (finding.tx_hash, finding.block_number) == ("0xdep_1", 100)


def test_an_expired_order_paid_too_late_or_unconfirmed_or_disputed_is_clean() -> None:
    after_grace = EXPIRED_ORDER.grace_ends_at + timedelta(seconds=1)
    assert found(EXPIRED_ORDER, paid("dep_1", 5_000_000, block_time=after_grace)) == []
    assert found(EXPIRED_ORDER, paid("dep_1", 5_000_000, status="pending")) == []
    assert found(EXPIRED_ORDER, paid("dep_1", 5_000_000, block_time=None)) == []
    assert found(EXPIRED_ORDER, paid("dep_1", 5_000_000), disputed=frozenset({"dep_1"})) == []


def test_in_time_runs_from_the_creation_second_to_the_grace_end_inclusive() -> None:
    second = CREATED.replace(microsecond=0)
    assert in_time(EXPIRED_ORDER, paid("d", 1, block_time=second))
    assert not in_time(EXPIRED_ORDER, paid("d", 1, block_time=second - timedelta(seconds=1)))
    assert in_time(EXPIRED_ORDER, paid("d", 1, block_time=EXPIRED_ORDER.grace_ends_at))


def test_only_the_chain_re_reads_disputes_set_a_payment_aside() -> None:
    def finding(category: str, deposit_id: str | None) -> Finding:
        return Finding(category=category, chain_id="chain", detail="", deposit_id=deposit_id)

    findings = [
        finding("mismatch", "dep_1"),
        finding("receipt_missing", "dep_2"),
        finding("not_acknowledged", "dep_3"),
        finding("coverage_gap", None),
    ]
    assert disputed_deposits(findings) == {"dep_1", "dep_2"}


def announcement(**changes: object) -> OrderAnnouncement:
    base = OrderAnnouncement(
        seq=7,
        event_id="evt_1",
        type="order.completed",
        order_id="ord_1",
        chain_id="chain",
        unacknowledged=1,
        failed=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_an_unacknowledged_order_event_is_reported_and_its_failed_deliveries_requeue() -> None:
    check = check_order_events([announcement()], chain_ids={"chain"})
    [finding] = check.findings
    assert (finding.category, finding.order_id, finding.key) == (
        "order_not_acknowledged",
        "ord_1",
        "evt_1",
    )
    assert finding.subject == "reconciliation:order_not_acknowledged:evt_1"
    assert finding.detail == "order.completed evt_1: 1 delivery(ies) not acknowledged (1 failed)"
    assert check.failed_events == [7]
    assert discrepancies(counts(check.findings)) == 1


def test_still_retrying_is_reported_but_not_requeued() -> None:
    check = check_order_events([announcement(failed=0)], chain_ids={"chain"})
    assert [f.category for f in check.findings] == ["order_not_acknowledged"]
    assert check.failed_events == []


def test_acknowledged_or_other_chains_events_are_not_findings() -> None:
    events = [announcement(unacknowledged=0, failed=0), announcement(chain_id="elsewhere")]
    assert check_order_events(events, chain_ids={"chain"}).findings == []
