"""A payment link's checkout against the database, both engines (docs/design.md, Payment
links): its inventory is exact under concurrent checkouts, bounded by the cap of pending orders,
moved by the orders' ends, and nothing is written when a checkout is refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from chains.presets import order_chains
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.errors import InsufficientAddresses, ValidationFailed
from pool.kit.tables import address, payment_link, payment_order
from pool.links import service as links
from pool.links.checkout import LinkClosed, checkout
from pool.links.records import LinkAsk, LinkCurrency, LinkRow
from pool.orders.service import cancel_order
from pool.vocabulary import CANCELLED, COMPLETED, EXPIRED
from tests.api.test_orders_lifecycle_api import _end
from tests.fixtures.helpers import load_pool
from tests.fixtures.orders import order_settings

SEPOLIA_USDT = LinkCurrency("USDT", "ethereum-sepolia")
BSC_USDT = LinkCurrency("USDT", "bsc-testnet")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return order_settings(database_url)


async def _link(db: Database, settings: Settings, **fields: Any) -> LinkRow:
    values: dict[str, Any] = {"title": "Invoice", "amount": "25", "currencies": [SEPOLIA_USDT]}
    ask = LinkAsk(**{**values, **fields})
    link = await links.create_link(
        db, ask, chains=order_chains(settings), allow_http=True, actor="test"
    )
    published, changed = await links.publish_link(
        db, link.id, chains=order_chains(settings), actor="test"
    )
    assert changed and published.status == "published"
    return published


async def _checkout(
    db: Database,
    settings: Settings,
    link: LinkRow,
    *,
    choice: int = 0,
    amount: str | None = None,
    cap: int = 1000,
) -> dict[str, Any]:
    return await checkout(
        db,
        slug=link.slug,
        choice=choice,
        amount=amount,
        chains=order_chains(settings),
        settings=settings.orders,
        pending_cap=cap,
        allow_http=True,
        base_url="https://pay.example",
    )


async def _counters(db: Database, link_id: str) -> tuple[int | None, int, int, int]:
    """(total, reserved, sold, the link's pending orders counted)."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(
                    payment_link.c.inventory_total,
                    payment_link.c.inventory_reserved,
                    payment_link.c.inventory_sold,
                ).where(payment_link.c.id == link_id)
            )
        ).one()
        pending = await conn.scalar(
            select(func.count()).where(
                payment_order.c.payment_link_id == link_id, payment_order.c.status == "pending"
            )
        )
    return row[0], row[1], row[2], int(pending or 0)


async def test_200_concurrent_checkouts_of_a_link_with_50_left_make_exactly_50_orders(
    db: Database, settings: Settings
) -> None:
    await load_pool(db, "evm", 300)
    link = await _link(db, settings, inventory_total=60)
    for _ in range(10):  # ten sold already: 50 left
        await _end(db, await _checkout(db, settings, link), COMPLETED)

    async def one() -> str:
        try:
            return (await _checkout(db, settings, link))["orderId"]
        except LinkClosed as closed:
            return closed.reason

    outcomes = await asyncio.gather(*(one() for _ in range(200)))
    made = [o for o in outcomes if o.startswith("ord_")]
    assert len(made) == 50 and len(set(made)) == 50
    assert set(outcomes) - set(made) == {"sold_out"}
    assert await _counters(db, link.id) == (60, 50, 10, 50)
    async with db.read() as conn:
        allocated = await conn.scalar(select(func.count()).where(address.c.status == "allocated"))
        distinct = await conn.scalar(select(func.count(func.distinct(payment_order.c.address_id))))
    assert allocated == 50 and distinct == 60  # one address per order, none twice


async def test_the_cap_of_pending_orders_bounds_what_a_link_takes_of_the_pool(
    db: Database, settings: Settings
) -> None:
    await load_pool(db, "evm", 40)
    link = await _link(db, settings)  # unlimited inventory

    async def one() -> LinkClosed | dict[str, Any]:
        try:
            return await _checkout(db, settings, link, cap=5)
        except LinkClosed as closed:
            return closed

    outcomes = await asyncio.gather(*(one() for _ in range(60)))
    orders = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, LinkClosed)]
    assert len(orders) == 5 and {r.reason for r in refused} == {"busy"}
    # Try again when the first pending order ends at the latest: its grace end (15 minutes).
    assert all(14 * 60 <= (r.retry_after or 0) <= 15 * 60 + 5 for r in refused)
    async with db.read() as conn:
        free = await conn.scalar(select(func.count()).where(address.c.status == "available"))
    assert free == 35
    # An order ending frees a place at once.
    await _end(db, orders[0], EXPIRED)
    assert (await _checkout(db, settings, link, cap=5))["paymentLinkId"] == link.id


@pytest.mark.parametrize("ending", [COMPLETED, EXPIRED, CANCELLED])
async def test_an_orders_end_sells_or_releases_its_unit(
    db: Database, settings: Settings, ending: str
) -> None:
    await load_pool(db, "evm", 3)
    link = await _link(db, settings, inventory_total=1)
    order = await _checkout(db, settings, link)
    assert order["paymentLinkId"] == link.id and order["amount"] == "25"
    assert await _counters(db, link.id) == (1, 1, 0, 1)
    with pytest.raises(LinkClosed) as sold_out:
        await _checkout(db, settings, link)
    assert sold_out.value.reason == "sold_out"
    if ending == CANCELLED:
        await cancel_order(db, order_id=order["orderId"], cooldown=timedelta(0))
    else:
        await _end(db, order, ending)
    sold = 1 if ending == COMPLETED else 0
    assert await _counters(db, link.id) == (1, 0, sold, 0)
    if ending != COMPLETED:  # the unit is back: someone else may buy it
        assert (await _checkout(db, settings, link))["status"] == "pending"


async def test_a_dry_pool_refuses_the_checkout_and_keeps_the_unit(
    db: Database, settings: Settings
) -> None:
    link = await _link(db, settings, inventory_total=5)
    with pytest.raises(InsufficientAddresses):
        await _checkout(db, settings, link)
    assert await _counters(db, link.id) == (5, 0, 0, 0)
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(payment_order)) == 0


async def test_closed_links_take_no_order(db: Database, settings: Settings) -> None:
    await load_pool(db, "evm", 3)
    chains = order_chains(settings)
    draft = await links.create_link(
        db,
        LinkAsk(title="Draft", amount="1", currencies=[SEPOLIA_USDT]),
        chains=chains,
        allow_http=True,
        actor="test",
    )
    archived = await _link(db, settings)
    await links.archive_link(db, archived.id, actor="test")
    expiring = await _link(db, settings, expires_at=utc_now() + timedelta(seconds=1))
    await links.patch_link(
        db, expiring.id, {"expires_at": utc_now() + timedelta(milliseconds=50)}, actor="test"
    )
    await asyncio.sleep(0.1)
    for link, reason in ((draft, "draft"), (archived, "archived"), (expiring, "expired")):
        with pytest.raises(LinkClosed) as closed:
            await _checkout(db, settings, link)
        assert closed.value.reason == reason
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(payment_order)) == 0


async def test_the_payer_chooses_the_currency_and_enters_an_open_amount(
    db: Database, settings: Settings
) -> None:
    await load_pool(db, "evm", 3)
    link = await _link(db, settings, amount="0", currencies=[SEPOLIA_USDT, BSC_USDT])
    assert link.open_amount
    order = await _checkout(db, settings, link, choice=1, amount="12.000000000000000001")
    assert (order["chainId"], order["amount"]) == ("bsc-testnet", "12.000000000000000001")
    for choice, amount, field in (
        (0, "1.0000001", "amount"),
        (0, None, "amount"),
        (2, "1", "choice"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await _checkout(db, settings, link, choice=choice, amount=amount)
        assert refused.value.details == [
            {"field": field, "message": refused.value.details[0]["message"]}
        ]
    assert await _counters(db, link.id) == (None, 1, 0, 1)


async def test_a_checkout_order_carries_the_links_metadata_and_urls(
    db: Database, settings: Settings
) -> None:
    await load_pool(db, "evm", 1)
    link = await _link(
        db,
        settings,
        metadata={"invoiceNumber": "INV-2025-001"},
        success_url="https://shop.example/thanks",
        cancel_url="https://shop.example/cart",
    )
    order = await _checkout(db, settings, link)
    assert order["metadata"] == {"invoiceNumber": "INV-2025-001"}
    assert order["successUrl"] == "https://shop.example/thanks"
    assert order["orderReference"].startswith(f"{link.id}:")
    assert order["paymentUrl"] == f"https://pay.example/pay/order/{order['orderId']}"
