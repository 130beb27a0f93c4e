"""Tron addresses: base58check of 0x41 + 20 bytes (by hand: tronpy cannot live beside web3)."""

from __future__ import annotations

import hashlib
import re

import base58

from pool.kit.errors import ValidationFailed
from pool.vocabulary import ParsedAddress

TRON_PREFIX = 0x41
_EVM_LIKE = re.compile(r"0[xX][0-9a-fA-F]{40}")


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def hex20_to_tron(hex20: str) -> str:
    payload = bytes([TRON_PREFIX]) + bytes.fromhex(hex20)
    return base58.b58encode(payload + _checksum(payload)).decode("ascii")


def parse_tron_address(text: str) -> ParsedAddress:
    value = text.strip()
    if _EVM_LIKE.fullmatch(value):
        raise ValidationFailed(
            "this is an EVM (0x) address, not a Tron address", code="INVALID_ADDRESS"
        )
    raw = _decode_base58(value)
    if len(raw) != 25:
        raise ValidationFailed("Tron address must decode to 25 bytes", code="INVALID_ADDRESS")
    payload, checksum = raw[:21], raw[21:]
    if _checksum(payload) != checksum:
        raise ValidationFailed(
            "Tron address fails its base58check checksum", code="INVALID_ADDRESS"
        )
    if payload[0] != TRON_PREFIX:
        raise ValidationFailed(
            "Tron address must start with the 0x41 prefix (T…)", code="INVALID_ADDRESS"
        )
    hex20 = payload[1:].hex()
    if hex20 == "0" * 40:
        raise ValidationFailed(
            "the zero address cannot be a deposit address", code="INVALID_ADDRESS"
        )
    return ParsedAddress(protocol="tron", text=value, hex20=hex20)


def _decode_base58(value: str) -> bytes:
    if not value or len(value) > 64:
        raise ValidationFailed(
            "Tron address must be a 34-character base58 string", code="INVALID_ADDRESS"
        )
    try:
        return bytes(base58.b58decode(value))
    except ValueError as exc:
        raise ValidationFailed(
            "Tron address contains characters outside base58", code="INVALID_ADDRESS"
        ) from exc
