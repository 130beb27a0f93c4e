"""Pick the address codec of a protocol. Pure: no I/O, safe for the API to import."""

from __future__ import annotations

from collections.abc import Callable

from chains.evm.address import parse_evm_address, to_checksum_address
from chains.tron.address import hex20_to_tron, parse_tron_address
from pool.vocabulary import TRON, AddressParser, Protocol

_PARSERS: dict[Protocol, AddressParser] = {
    "evm": parse_evm_address,
    "tron": parse_tron_address,
}


def address_parser(protocol: Protocol) -> AddressParser:
    return _PARSERS[protocol]


_FROM_HEX20: dict[Protocol, Callable[[str], str]] = {
    "evm": to_checksum_address,
    "tron": hex20_to_tron,
}


def address_from_hex20(protocol: Protocol) -> Callable[[str], str]:
    """The canonical text of 20 account bytes: EIP-55 on EVM, base58 `T…` on Tron."""
    return _FROM_HEX20[protocol]


def transaction_id(protocol: Protocol, tx_hash: str) -> str:
    """Tron shows transaction ids without `0x` (docs/design.md, Chains); EVM keeps it."""
    lowered = tx_hash.lower()
    return lowered.removeprefix("0x") if protocol == TRON else lowered
