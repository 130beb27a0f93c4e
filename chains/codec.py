"""Pick the address codec of a protocol. Pure: no I/O, safe for the API to import."""

from __future__ import annotations

from chains.evm.address import parse_evm_address
from chains.tron.address import parse_tron_address
from pool.domain import AddressParser, Protocol

_PARSERS: dict[Protocol, AddressParser] = {
    "evm": parse_evm_address,
    "tron": parse_tron_address,
}


def address_parser(protocol: Protocol) -> AddressParser:
    return _PARSERS[protocol]
