"""EVM addresses: `0x` + 40 hex, EIP-55 checksummed when mixed case."""

from __future__ import annotations

import re

from sha3 import keccak_256

from pool.kit.errors import ValidationFailed
from pool.vocabulary import ParsedAddress

_HEX40 = re.compile(r"0[xX]([0-9a-fA-F]{40})")
ZERO_HEX20 = "0" * 40


def to_checksum_address(hex40: str) -> str:
    """EIP-55: a letter is upper-case where the keccak of the lower-case hex has a high nibble."""
    lower = hex40.lower()
    upper = hex40.upper()
    digest = keccak_256(lower.encode("ascii")).hexdigest()[:40]
    # A hex digit above "7" is a high nibble; digits have no case, so upper == lower there.
    # (This loop is the import's hot spot: a million addresses go through it.)
    return "0x" + "".join(
        [u if d > "7" else c for c, u, d in zip(lower, upper, digest, strict=True)]
    )


def parse_evm_address(text: str) -> ParsedAddress:
    value = text.strip()
    match = _HEX40.fullmatch(value)
    if match is None:
        raise ValidationFailed(_why_not_evm(value), code="INVALID_ADDRESS")
    hex40 = match.group(1)
    checksummed = to_checksum_address(hex40)
    is_mixed_case = hex40 != hex40.lower() and hex40 != hex40.upper()
    if is_mixed_case and "0x" + hex40 != checksummed:
        raise ValidationFailed(
            "EVM address fails its EIP-55 checksum (a typo?)", code="INVALID_ADDRESS"
        )
    if hex40.lower() == ZERO_HEX20:
        raise ValidationFailed(
            "the zero address cannot be a deposit address", code="INVALID_ADDRESS"
        )
    return ParsedAddress(protocol="evm", text=checksummed, hex20=hex40.lower())


def _why_not_evm(value: str) -> str:
    if value.startswith("T") and len(value) == 34:
        return "this is a Tron address, not an EVM address"
    if value[:2] in ("0x", "0X"):
        return "EVM address must be 0x followed by exactly 40 hex characters"
    return "EVM address must start with 0x and have 40 hex characters"
