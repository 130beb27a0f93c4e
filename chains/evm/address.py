"""EVM addresses: `0x` + 40 hex, EIP-55 checksummed when mixed case."""

from __future__ import annotations

import re

from sha3 import keccak_256

from pool.kit.errors import ValidationFailed
from pool.vocabulary import ParsedAddress

_HEX40 = re.compile(r"0[xX]([0-9a-fA-F]{40})")
ZERO_HEX20 = "0" * 40
_LOW_BIT_EACH_BYTE = int.from_bytes(b"\x01" * 40, "big")


def to_checksum_address(hex40: str) -> str:
    """EIP-55: a letter is upper-case where the keccak of the lower-case hex has a high nibble.

    All 40 positions at once, as bits of two 320-bit integers (one byte a character), rather
    than a character at a time: an import of a million addresses spends most of its
    validation here. In ASCII a digit's hex character has a high nibble when its bit 3 is
    set ("8", "9") and a letter's always (bit 6: "a"-"f"); in the address, bit 6 marks a
    letter, and clearing bit 5 upper-cases it.
    """
    lower = hex40.lower().encode("ascii")
    if len(lower) != 40:
        raise ValueError(f"not 40 hex characters: {hex40!r}")
    digest = keccak_256(lower).hexdigest()[:40].encode("ascii")
    nibbles = int.from_bytes(digest, "big")
    letters = int.from_bytes(lower, "big")
    high = (nibbles >> 3) | (nibbles >> 6)
    upper_case = high & (letters >> 6) & _LOW_BIT_EACH_BYTE
    return "0x" + (letters ^ (upper_case << 5)).to_bytes(40, "big").decode("ascii")


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
