"""Reconciliation's comparisons that need no chain: pure functions over rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pool.deposits.totals import daily_totals, totals_csv
from pool.kit.clock import parse_moment
from pool.reconciliation.repository import Announced, Announcement, CreditedDeposit, LedgerDeposit
from pool.reconciliation.service import (
    check_ledger,
    counts,
    coverage_gaps,
    discrepancies,
    report_items,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)
STUCK = {"chain": timedelta(minutes=30)}

CONFIRMED = LedgerDeposit(
    id="dep_1",
    chain_id="chain",
    tx_hash="0xabc",
    log_index=0,
    block_number=100,
    block_hash="0xblock",
    token_contract="0xToken",
    recipient_hex20="ab" * 20,
    amount=5,
    currency="USDT",
    decimals=6,
    status="confirmed",
    late=False,
    attributed=True,
    detected_at=NOW - timedelta(hours=1),
    confirmed_at=NOW - timedelta(minutes=20),
)


def announced(*events: tuple[str, str, Announcement]) -> Announced:
    found = Announced()
    for deposit_id, kind, announcement in events:
        found.by_deposit.setdefault(deposit_id, {}).setdefault(kind, []).append(announcement)
    return found


def categories(rows: list[LedgerDeposit], seen: Announced) -> list[str]:
    check = check_ledger(rows, seen, now=NOW, grace=GRACE, stuck_after=STUCK)
    return sorted(f.category for f in check.findings)


def test_an_acknowledged_confirmation_is_clean() -> None:
    seen = announced(("dep_1", "deposit.confirmed", Announcement(1, deliveries=2, succeeded=2)))
    assert categories([CONFIRMED], seen) == []


def test_unacknowledged_after_grace_is_reported_and_only_failed_ones_requeue() -> None:
    waiting = announced(("dep_1", "deposit.confirmed", Announcement(7, deliveries=2, succeeded=1)))
    assert categories([CONFIRMED], waiting) == ["not_acknowledged"]
    check = check_ledger([CONFIRMED], waiting, now=NOW, grace=GRACE, stuck_after=STUCK)
    assert check.unacknowledged_events == []  # still retrying: not ours to touch
    failed = announced(("dep_1", "deposit.confirmed", Announcement(7, deliveries=2, failed=2)))
    check = check_ledger([CONFIRMED], failed, now=NOW, grace=GRACE, stuck_after=STUCK)
    assert check.unacknowledged_events == [7]


def test_within_grace_nothing_is_due_yet() -> None:
    fresh = replace(CONFIRMED, confirmed_at=NOW - timedelta(minutes=5))
    assert categories([fresh], Announced()) == []


def test_cancelled_deliveries_need_no_acknowledgement() -> None:
    seen = announced(
        ("dep_1", "deposit.confirmed", Announcement(1, deliveries=2, succeeded=1, cancelled=1))
    )
    assert categories([CONFIRMED], seen) == []


def test_confirmed_without_an_event_is_not_announced() -> None:
    check = check_ledger([CONFIRMED], Announced(), now=NOW, grace=GRACE, stuck_after=STUCK)
    assert [f.category for f in check.findings] == ["not_announced"]
    assert check.unannounced == ["dep_1"]


def test_no_subscriber_is_information_not_a_discrepancy() -> None:
    seen = announced(("dep_1", "deposit.confirmed", Announcement(1)))
    findings = check_ledger([CONFIRMED], seen, now=NOW, grace=GRACE, stuck_after=STUCK).findings
    assert [f.category for f in findings] == ["no_receiver"]
    assert discrepancies(counts(findings)) == 0


def test_stuck_pending_unattributed_late_and_dust() -> None:
    stuck = replace(CONFIRMED, id="dep_2", status="pending", confirmed_at=None)
    recent = replace(stuck, id="dep_3", detected_at=NOW - timedelta(minutes=5))
    stranger = replace(CONFIRMED, id="dep_4", attributed=False)
    dust = replace(stranger, id="dep_5", status="dust")
    late = replace(CONFIRMED, id="dep_6", late=True)
    seen = announced(("dep_6", "deposit.confirmed", Announcement(1, deliveries=1, succeeded=1)))
    assert categories([stuck, recent, stranger, dust, late], seen) == [
        "late",
        "stuck_pending",
        "unattributed",
    ]


def test_completed_deposits_are_settled() -> None:
    done = replace(CONFIRMED, status="completed")
    assert categories([done], Announced()) == []


@pytest.mark.parametrize(
    ("heights", "cursor", "head", "gaps"),
    [
        ([5, 6, 7, 8], 8, 8, []),
        ([5, 6, 10, 11], 11, 11, [(8, 9)]),  # 7 is below the window of 4
        ([5, 6], 9, 9, [(7, 9)]),  # cursor moved past everything stored
        ([], 100, 100, []),  # nothing stored: nothing to tell
        ([1, 2, 3, 50, 51], 51, 51, [(48, 49)]),  # below the window nothing is expected
    ],
)
def test_coverage_gaps(
    heights: list[int], cursor: int, head: int, gaps: list[tuple[int, int]]
) -> None:
    assert coverage_gaps(heights, cursor=cursor, head=head, window=4) == gaps


def test_report_items_put_the_worst_first() -> None:
    stuck = replace(CONFIRMED, id="dep_2", status="pending", confirmed_at=None)
    check = check_ledger([stuck, CONFIRMED], Announced(), now=NOW, grace=GRACE, stuck_after=STUCK)
    assert [i["category"] for i in report_items(check.findings)] == [
        "not_announced",
        "stuck_pending",
    ]


def test_daily_totals_sum_exact_base_units_per_day_chain_and_token() -> None:
    def credited(day: int, amount: int, block: int, chain: str = "a") -> CreditedDeposit:
        moment = datetime(2026, 11, day, 23, 59, tzinfo=UTC)
        return CreditedDeposit(chain, "USDT", "0xT", 18, amount, block, moment)

    huge = 10**30 + 1  # beyond a float's precision
    rows = [credited(20, huge, 7), credited(20, 1, 5), credited(21, 2, 9), credited(20, 3, 1, "b")]
    totals = daily_totals(rows)
    assert [
        (t["date"], t["chainId"], t["count"], t["firstBlock"], t["lastBlock"]) for t in totals
    ] == [
        ("2026-11-20", "a", 2, 5, 7),
        ("2026-11-20", "b", 1, 1, 1),
        ("2026-11-21", "a", 1, 9, 9),
    ]
    assert totals[0]["amount"] == "1000000000000.000000000000000002"
    assert totals_csv(totals).splitlines()[1].startswith("2026-11-20,a,USDT,0xT,2,")


def test_parse_moment() -> None:
    assert parse_moment("24h", now=NOW) == NOW - timedelta(hours=24)
    assert parse_moment("2026-11-01", now=NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_moment("2026-11-01T10:00:00Z", now=NOW).hour == 10
    with pytest.raises(ValueError, match="neither a duration"):
        parse_moment("yesterday", now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "999999999d",
        "99999999999999999999999999m",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-14:00",
    ],
)
def test_moments_outside_the_calendar_are_value_errors(value: str) -> None:
    """Beyond year 1 or 9999 once in UTC: a ValueError the API answers with 400, not a 500."""
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        parse_moment(value, now=NOW)


def test_moments_with_an_offset_come_back_in_utc() -> None:
    assert parse_moment("2026-11-01T10:00:00+02:00", now=NOW) == datetime(
        2026, 11, 1, 8, tzinfo=UTC
    )
    assert parse_moment("2026-11-01T10:00:00+02:00", now=NOW).utcoffset() == timedelta(0)


def test_an_orders_transfer_is_neither_unattributed_nor_unannounced() -> None:
    """No binding and no deposit event, by design: its order accounts for it."""
    paid = replace(CONFIRMED, attributed=False, order_id="ord_1")
    assert categories([paid], Announced()) == []
    assert categories([replace(paid, order_id=None)], Announced()) == ["unattributed"]
