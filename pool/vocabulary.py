"""Small typed values shared by the services and their callers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

Protocol = Literal["evm", "tron"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)

AddressStatus = Literal["available", "bound", "archived"]

# One instance, and one database, serves one network (Dodo's test/live modes).
Network = Literal["testnet", "mainnet"]
NETWORKS: tuple[Network, ...] = get_args(Network)
# An API key names its network in its first characters.
KEY_PREFIXES: dict[Network, str] = {"testnet": "pk_test_", "mainnet": "pk_live_"}


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """An address as stored: canonical text (EIP-55 / base58 `T…`) and its 20 bytes in hex."""

    protocol: Protocol
    text: str
    hex20: str


# chains/ provides the codecs; pool needs only "text in, ParsedAddress out, or ValidationFailed".
AddressParser = Callable[[str], ParsedAddress]


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
