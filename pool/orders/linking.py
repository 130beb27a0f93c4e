"""Which order a transfer to a pool address belongs to, and what it is to it (docs/design.md,
Orders: how a transfer finds its order).

Pure: the watcher's look-up of recipients brings each address's latest binding and latest
order (pool/deposits/ledger_repository.py `recipients`), and this decides by the transfer's
block time, so that recording the same transfer again (a rescan) decides the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from pool.orders.payloads import payment_moment_fits
from pool.orders.repository import OrderUse
from pool.vocabulary import LATE_PAYMENT, MISMATCHED_PAYMENT, PAYMENT, OrderPaymentRole


@dataclass(frozen=True, slots=True)
class OrderLink:
    order_id: str
    role: OrderPaymentRole


# Not the order's: the binding decides as it always has (its reference, late or not, or nobody).
BINDING: Final = "binding"
# Nobody's: the address's last use was an order whose cooldown is over (the address is a
# spare again); an earlier binding of the address does not get it back.
SPARE: Final = "spare"
Owner = OrderLink | Literal["binding", "spare"]


def owner_of(
    order: OrderUse | None,
    *,
    bound_at: datetime | None,
    chain_id: str,
    token_contract: str,
    block_time: datetime,
) -> Owner:
    """The use of the address in effect when the transfer was mined: the latest order when it
    was created (to the second) before the block and is pending or still cooling down at the
    block's time, unless a binding made after that order already held the address then."""
    if order is None:
        return BINDING
    binding_newer = bound_at is not None and bound_at > order.created_at
    if binding_newer and bound_at is not None and block_time >= bound_at:
        return BINDING
    if block_time < order.created_at.replace(microsecond=0):
        return BINDING  # mined before the order existed: the previous use's
    cooled = order.cooldown_until is not None and block_time >= order.cooldown_until
    if order.ended_at is not None and cooled:
        return BINDING if binding_newer else SPARE
    return OrderLink(order.order_id, role_of(order, chain_id, token_contract, block_time))


def role_of(
    order: OrderUse, chain_id: str, token_contract: str, block_time: datetime
) -> OrderPaymentRole:
    """`late` once the order's time is over (after its grace end, or after it ended earlier:
    completed or cancelled); otherwise `payment` for its token on its chain, `mismatch` for
    any other."""
    after_end = order.ended_at is not None and block_time > order.ended_at
    if after_end or block_time > order.grace_ends_at:
        return LATE_PAYMENT
    same_token = token_contract.lower() == order.token_contract.lower()
    if chain_id == order.chain_id and same_token and payment_moment_fits(order, block_time):
        return PAYMENT
    return MISMATCHED_PAYMENT
