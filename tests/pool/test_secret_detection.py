import hashlib
import secrets

import base58
import pytest
from mnemonic import Mnemonic

from pool.secret_detection import secret_kind


def _wif(compressed: bool, version: int = 0x80) -> str:
    payload = bytes([version]) + secrets.token_bytes(32) + (b"\x01" if compressed else b"")
    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return base58.b58encode(payload + checksum).decode()


def _xprv() -> str:
    payload = bytes.fromhex("0488ade4") + secrets.token_bytes(74)
    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return base58.b58encode(payload + checksum).decode()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (secrets.token_hex(32), "raw private key"),
        ("0x" + secrets.token_hex(32).upper(), "raw private key"),
        (_wif(compressed=False), "WIF"),
        (_wif(compressed=True), "WIF"),
        (_wif(compressed=True, version=0xEF), "WIF"),
        (_xprv(), "xprv"),
        (Mnemonic("english").generate(128), "mnemonic"),
        (Mnemonic("english").generate(256).upper(), "mnemonic"),
    ],
)
def test_secrets_are_recognised(value: str, kind: str) -> None:
    assert secret_kind(value) is not None and kind in secret_kind(value)


@pytest.mark.parametrize(
    "value",
    [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
        "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwqPfgyP3hooxujYzAu3fDVmz",
        "address",
        "abandon abandon abandon",  # too short to be a phrase
        secrets.token_hex(31),
    ],
)
def test_addresses_and_public_keys_are_not_secrets(value: str) -> None:
    assert secret_kind(value) is None
