"""What a payer is shown of an order (pool.orders.payer_view): its progress, what it has sent,
what is left, confirmations, the merchant's next page — pure logic on rows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from pool.orders.payer_view import payer_view
from pool.orders.repository import OrderRow, OrderTransfer

CREATED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
USDT = 10**6
ORDER = OrderRow(
    id="ord_" + "ab" * 16,
    order_reference="shop-order-7",
    protocol="evm",
    chain_id="ethereum-sepolia",
    currency="USDT",
    token_contract="0x" + "22" * 20,
    decimals=6,
    amount=100 * USDT,
    address_id=1,
    address="0x" + "11" * 20,
    status="pending",
    required_confirmations=3,
    metadata={"customer": "secret"},
    success_url="https://shop.example/done?cart=9",
    cancel_url="https://shop.example/cancel",
    payment_url="https://pay.example/pay/order/x",
    created_at=CREATED,
    window_ends_at=CREATED + timedelta(minutes=10),
    grace_ends_at=CREATED + timedelta(minutes=15),
    completed_at=None,
    expired_at=None,
    cancelled_at=None,
    completed_by=None,
    cooldown_until=None,
)


def transfer(
    n: int,
    amount: int,
    status: str,
    *,
    role: str = "payment",
    block: int = 100,
    head: int | None = 100,
    currency: str = "USDT",
    chain_id: str = "ethereum-sepolia",
) -> OrderTransfer:
    return OrderTransfer(
        order_id=ORDER.id,
        role=role,  # type: ignore[arg-type]
        deposit_id=f"dep_{n}",
        chain_id=chain_id,
        currency=currency,
        tx_hash="0x" + f"{n:064x}",
        log_index=0,
        block_number=block,
        block_time=CREATED,
        amount=amount,
        decimals=6,
        status=status,
        detected_at=CREATED,
        chain_head=head,
    )


def test_nothing_sent_is_waiting() -> None:
    view = payer_view(ORDER, [])
    assert (view.progress, view.received, view.remaining, view.confirmations) == (
        "waiting",
        "0",
        "100",
        0,
    )
    assert view.redirect_url is None


def test_a_payment_in_a_block_is_confirming_and_counts_as_sent() -> None:
    view = payer_view(ORDER, [transfer(1, 40 * USDT, "pending", block=100, head=101)])
    assert view.progress == "confirming"
    assert (view.received, view.confirmed, view.remaining) == ("40", "0", "60")
    assert (view.confirmations, view.required_confirmations) == (2, 3)


def test_the_least_confirmed_payment_gives_the_confirmations() -> None:
    view = payer_view(
        ORDER,
        [
            transfer(1, 10 * USDT, "pending", block=90, head=101),
            transfer(2, 10 * USDT, "pending", block=101, head=101),
        ],
    )
    assert view.confirmations == 1


def test_confirmed_but_short_is_partial_with_what_is_left() -> None:
    view = payer_view(ORDER, [transfer(1, 40 * USDT, "confirmed")])
    assert (view.progress, view.received, view.remaining) == ("partial", "40", "60")


def test_reverted_payments_and_other_roles_are_not_counted() -> None:
    view = payer_view(
        ORDER,
        [
            transfer(1, 40 * USDT, "reverted"),
            transfer(2, 5 * USDT, "confirmed", role="mismatch", currency="USDC"),
            transfer(3, 7 * USDT, "confirmed", role="mismatch", chain_id="bsc-testnet"),
        ],
    )
    assert (view.progress, view.received) == ("waiting", "0")
    assert [(p.amount, p.currency, p.chain_id) for p in view.other_payments] == [
        ("5", "USDC", "ethereum-sepolia"),
        ("7", "USDT", "bsc-testnet"),
    ]


def test_paid_sends_the_payer_to_the_success_url_with_the_outcome() -> None:
    paying = transfer(1, 100 * USDT, "confirmed")
    completed = dataclasses.replace(ORDER, status="completed", completed_by="dep_1")
    view = payer_view(completed, [paying])
    assert view.progress == "paid"
    assert view.redirect_url is not None
    parts = urlsplit(view.redirect_url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "shop.example", "/done")
    assert parse_qsl(parts.query) == [
        ("cart", "9"),  # the merchant's own query stays
        ("orderId", ORDER.id),
        ("orderReference", "shop-order-7"),
        ("status", "completed"),
        ("txHash", paying.tx_hash),
    ]


def test_expired_and_cancelled_go_to_the_cancel_url_or_nowhere() -> None:
    for status in ("expired", "cancelled"):
        view = payer_view(dataclasses.replace(ORDER, status=status), [])
        assert view.progress == status
        assert view.redirect_url is not None
        assert dict(parse_qsl(urlsplit(view.redirect_url).query))["status"] == status
    bare = dataclasses.replace(ORDER, status="expired", cancel_url=None)
    assert payer_view(bare, []).redirect_url is None


def test_a_late_payment_is_noticed() -> None:
    ended = dataclasses.replace(ORDER, status="expired")
    assert payer_view(ended, [transfer(1, USDT, "pending", role="late")]).paid_late


def test_the_status_poll_reveals_no_reference_and_no_metadata() -> None:
    shown = payer_view(ORDER, [transfer(1, USDT, "pending")]).status_payload(CREATED)
    text = repr(shown)
    assert "shop-order-7" not in text and "secret" not in text and "dep_1" not in text
    assert set(shown) == {
        "orderId",
        "status",
        "paymentProgress",
        "amount",
        "currency",
        "chainId",
        "address",
        "receivedAmount",
        "confirmedAmount",
        "remainingAmount",
        "currentConfirmations",
        "requiredConfirmations",
        "paymentWindowEndsAt",
        "expiresAt",
        "otherPayments",
        "paidLate",
        "redirectUrl",
        "serverTime",
    }
