"""What a bind and an unbind take and give back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pool.vocabulary import Protocol


@dataclass(frozen=True, slots=True)
class Binding:
    id: int
    deposit_reference: str
    protocol: Protocol
    address: str
    metadata: dict[str, Any] | None
    bound_at: datetime
    unbound_at: datetime | None = None
    cooldown_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class BindIntent:
    """What a caller asks of `pool.bindings.service.bind`, carried through its two strategies."""

    reference: str
    protocol: Protocol
    metadata: dict[str, Any] | None
    actor: str
    now: datetime


@dataclass(frozen=True, slots=True)
class BindResult:
    binding: Binding
    created: bool


@dataclass(frozen=True, slots=True)
class Unbound:
    deposit_reference: str
    protocol: Protocol
    address: str
    cooldown_until: datetime
