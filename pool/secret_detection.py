"""Recognise private keys in what operators import (Invariant 9): addrpool is watch-only.

Whatever looks like a secret is refused, and never echoed back, stored or logged.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

import base58
from mnemonic import Mnemonic

REFUSAL = (
    "this looks like a {kind}; addrpool never takes private keys, seeds or xprv "
    "(it is watch-only): import addresses or an xpub instead, and treat this key as exposed"
)
REDACTED = "[redacted]"

_HEX_KEY = re.compile(r"(0[xX])?[0-9a-fA-F]{64}")
_EXTENDED_PRIVATE = ("xprv", "tprv", "yprv", "zprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv")
_WIF_VERSIONS = (0x80, 0xEF)  # Bitcoin-style mainnet / testnet
_MNEMONIC_LENGTHS = (12, 15, 18, 21, 24)


@cache
def _english_words() -> frozenset[str]:
    return frozenset(Mnemonic("english").wordlist)


def secret_kind(value: str) -> str | None:
    """What kind of secret `value` looks like, or None."""
    text = value.strip()
    if _HEX_KEY.fullmatch(text):
        return "raw private key (64 hex characters)"
    if text.startswith(_EXTENDED_PRIVATE) and len(text) >= 100:
        return "extended private key (xprv)"
    if _is_wif(text):
        return "WIF private key"
    if _is_mnemonic(text):
        return "BIP39 mnemonic phrase"
    return None


def refusal(kind: str) -> str:
    return REFUSAL.format(kind=kind)


def _is_wif(text: str) -> bool:
    if len(text) not in (51, 52):
        return False
    try:
        raw = base58.b58decode(text)
    except ValueError:
        return False
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        return False
    return payload[0] in _WIF_VERSIONS and len(payload) in (33, 34)


def _is_mnemonic(text: str) -> bool:
    words = text.lower().replace(",", " ").split()
    if len(words) not in _MNEMONIC_LENGTHS:
        return False
    english = _english_words()
    return all(word in english for word in words)
