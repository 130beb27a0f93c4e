"""The values an order's creation works with: the chains orders may use, what a client asked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pool.vocabulary import Protocol


@dataclass(frozen=True, slots=True)
class OrderToken:
    symbol: str
    contract: str  # canonical text: EIP-55 or base58 `T…`
    decimals: int


@dataclass(frozen=True, slots=True)
class OrderChain:
    """A configured chain the watcher runs for (RPC URLs and at least one token): an order on any
    other chain could never see its payment."""

    chain_id: str
    protocol: Protocol
    confirmations: int
    tokens: Mapping[str, OrderToken]  # by symbol


@dataclass(frozen=True, slots=True)
class OrderAsk:
    """`POST /api/v1/orders` as the client sent it (shape already checked)."""

    reference: str
    amount: str
    currency: str
    chain_id: str
    metadata: dict[str, Any] | None = None
    success_url: str | None = None
    cancel_url: str | None = None
    window_minutes: int | None = None
    grace_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class CreatedOrder:
    """The order object (pool.orders.payloads), and whether this request created it."""

    order: dict[str, Any]
    created: bool
