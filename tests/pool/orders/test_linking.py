"""Which use of an address a transfer belongs to (pool/orders/linking.py): pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pool.orders.linking import BINDING, SPARE, OrderLink, owner_of
from pool.orders.repository import OrderUse

T0 = datetime(2026, 12, 6, 12, 0, 0, 400_000, tzinfo=UTC)  # created mid-second
USDT = "0xUSDT"
GRACE_END = T0 + timedelta(minutes=15)


def use(
    *,
    status: str = "pending",
    ended_at: datetime | None = None,
    cooldown: timedelta = timedelta(minutes=30),
) -> OrderUse:
    return OrderUse(
        "ord_1",
        "ethereum",
        USDT,
        status,  # type: ignore[arg-type]
        T0,
        GRACE_END,
        ended_at,
        None if ended_at is None else ended_at + cooldown,
    )


def owner(order: OrderUse | None, at: datetime, **kw: object) -> object:
    return owner_of(
        order,
        bound_at=kw.get("bound_at"),  # type: ignore[arg-type]
        chain_id=str(kw.get("chain_id", "ethereum")),
        token_contract=str(kw.get("token", USDT)),
        block_time=at,
    )


def second(offset: float) -> datetime:
    return (T0 + timedelta(seconds=offset)).replace(microsecond=0)


@pytest.mark.parametrize(
    ("at", "role"),
    [
        (second(0), "payment"),  # the creation second itself counts (block times are whole)
        (GRACE_END, "payment"),
        (GRACE_END + timedelta(seconds=1), "late"),
    ],
    ids=["creation-second", "grace-end", "after-grace"],
)
def test_a_pending_order_takes_its_token_by_block_time(at: datetime, role: str) -> None:
    assert owner(use(), at) == OrderLink("ord_1", role)  # type: ignore[arg-type]


def test_another_token_or_chain_during_the_order_is_a_mismatch() -> None:
    assert owner(use(), second(60), token="0xUSDC") == OrderLink("ord_1", "mismatch")
    assert owner(use(), second(60), chain_id="tron") == OrderLink("ord_1", "mismatch")
    assert owner(use(), GRACE_END + timedelta(seconds=5), token="0xUSDC") == OrderLink(
        "ord_1", "late"
    )


def test_a_contract_is_compared_whatever_its_case() -> None:
    assert owner(use(), second(60), token=USDT.lower()) == OrderLink("ord_1", "payment")


def test_after_a_completion_a_transfer_is_late_even_inside_the_window() -> None:
    done = use(status="completed", ended_at=T0 + timedelta(minutes=2))
    assert owner(done, second(60)) == OrderLink("ord_1", "payment")  # mined before it ended
    assert owner(done, second(180)) == OrderLink("ord_1", "late")


def test_after_the_cooldown_the_address_is_a_spare_again() -> None:
    ended = use(status="expired", ended_at=GRACE_END, cooldown=timedelta(minutes=30))
    assert owner(ended, GRACE_END + timedelta(minutes=29)) == OrderLink("ord_1", "late")
    assert owner(ended, GRACE_END + timedelta(minutes=30)) == SPARE
    # ... even when a binding held the address before the order: the latest use wins.
    bound_before = T0 - timedelta(days=10)
    assert owner(ended, GRACE_END + timedelta(hours=1), bound_at=bound_before) == SPARE


def test_a_transfer_mined_before_the_order_belongs_to_the_previous_use() -> None:
    assert owner(use(), second(-1)) == BINDING


def test_a_binding_made_after_the_order_takes_what_follows_it() -> None:
    ended = use(status="expired", ended_at=GRACE_END, cooldown=timedelta(0))
    bound = GRACE_END + timedelta(hours=2)
    assert owner(ended, bound + timedelta(seconds=1), bound_at=bound) == BINDING
    # Mined during the order's cooldown but recorded after the new binding: still the order's.
    cooling = use(status="expired", ended_at=GRACE_END, cooldown=timedelta(hours=3))
    assert owner(cooling, GRACE_END + timedelta(minutes=5), bound_at=bound) == OrderLink(
        "ord_1", "late"
    )


def test_no_order_leaves_the_binding_to_decide() -> None:
    assert owner(None, T0) == BINDING
