import hashlib
import secrets

import base58
import pytest
from mnemonic import Mnemonic

from pool.kit.secret_detection import secret_kind


def _wif(compressed: bool, version: int = 0x80) -> str:
    payload = bytes([version]) + secrets.token_bytes(32) + (b"\x01" if compressed else b"")
    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return base58.b58encode(payload + checksum).decode()


def _broken_checksum(key: str) -> str:
    """`key` with its last character changed (to another one: the same would keep it valid)."""
    return key[:-1] + ("x" if key[-1] != "x" else "y")


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
    ids=[
        "hex",
        "0x-HEX",
        "wif-uncompressed",
        "wif-compressed",
        "wif-testnet",
        "xprv",
        "mnemonic-12",
        "mnemonic-24-upper",
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
    ids=["evm-address", "tron-address", "xpub", "a-word", "three-words", "hex-31-bytes"],
)
def test_addresses_and_public_keys_are_not_secrets(value: str) -> None:
    assert secret_kind(value) is None


KEY = secrets.token_hex(32)
WIF = _wif(compressed=True)
XPRV = _xprv()
PHRASE = Mnemonic("english").generate(128)
ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        (f'"{KEY}"', KEY, "raw_private_key"),
        (f"key={KEY}", KEY, "raw_private_key"),
        (f"{ADDRESS} {KEY}", KEY, "raw_private_key"),
        (f"{ADDRESS},0,evm,,0x{KEY}", KEY, "raw_private_key"),
        (f"pk{KEY.upper()}", KEY.upper(), "raw_private_key"),
        (f"{WIF};", WIF, "wif_private_key"),
        (f"[wif: '{WIF}']", WIF, "wif_private_key"),
        (f'{{"address": "{ADDRESS}", "note": "{XPRV}"}}', XPRV, "extended_private_key"),
        (f"backup {XPRV[:60]}", XPRV[:60], "extended_private_key"),  # even cut short
        (f'"{PHRASE}"', PHRASE, "mnemonic"),
        (f"{ADDRESS} {PHRASE.upper()}", PHRASE.upper(), "mnemonic"),
        ("\r\n".join(PHRASE.split()), "\r\n".join(PHRASE.split()), "mnemonic"),
        (",".join(f'"{w}"' for w in PHRASE.split()), ",".join(PHRASE.split()), "mnemonic"),
        (
            " ".join(f"{n}. {w}" for n, w in enumerate(PHRASE.split(), start=1)),
            " ".join(f"{n}. {w}" for n, w in enumerate(PHRASE.split(), start=1))[3:],
            "mnemonic",
        ),
    ],
    ids=[
        "quoted-key",
        "key=",
        "after-address",
        "csv-column",
        "glued-upper",
        "wif;",
        "wif-in-brackets",
        "xprv-in-json",
        "xprv-cut-short",
        "quoted-phrase",
        "phrase-upper",
        "phrase-crlf",
        "phrase-quoted-words",
        "phrase-numbered",
    ],
)
def test_secrets_are_found_inside_any_text(text: str, secret: str, kind: str) -> None:
    from pool.kit.secret_detection import find_secrets

    (found,) = find_secrets(text)
    assert found.kind == kind
    assert text[found.start : found.end].replace('"', "") == secret.replace('"', "")


@pytest.mark.parametrize(
    "text",
    [
        f"{ADDRESS},{ADDRESS}",
        "0x" + secrets.token_hex(31) + "ff1",  # 65 hex digits: no key
        "0x" + secrets.token_hex(65),  # a signature-sized hex blob
        " ".join(PHRASE.split()[:11]) + " 0xabc " + " ".join(PHRASE.split()[:11]),
        "please credit this deposit to the account of my brother, who lives abroad",
        "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwqPfgyP3hooxujYzAu3fDVmz",
        _broken_checksum(_wif(compressed=True)),  # a random base58 string
    ],
    ids=[
        "two-addresses",
        "65-hex-digits",
        "signature-sized-hex",
        "two-11-word-runs",
        "plain-sentence",
        "xpub",
        "wif-broken-checksum",
    ],
)
def test_things_that_are_not_secrets(text: str) -> None:
    from pool.kit.secret_detection import find_secrets

    assert list(find_secrets(text)) == []


def test_every_secret_of_a_text_is_found_in_order() -> None:
    from pool.kit.secret_detection import find_secrets

    text = f"{ADDRESS}\n{KEY}\n{ADDRESS}\n{PHRASE}\n{WIF}\n"
    assert [f.kind for f in find_secrets(text)] == [
        "raw_private_key",
        "mnemonic",
        "wif_private_key",
    ]


@pytest.mark.parametrize(
    "text",
    [
        ("abandon " * 11 + "zzzzzzzzzz ") * 20_000,  # runs of 11 words, each cut short
        ("a" * 50 + " ") * 20_000,  # tokens one short of the shortest key
        (secrets.token_hex(32)[:63] + " ") * 20_000,
        ("1 2 3 " * 20_000) + "abandon",
        "x" * 2_000_000,
    ],
    # Stable, short ids: xdist's workers must collect the same ids, and one is random.
    ids=["words-cut-short", "tokens-one-short", "hex-one-short", "numbers-then-word", "one-token"],
)
def test_the_scan_stays_linear_on_hostile_input(text: str) -> None:
    import time

    from pool.kit.secret_detection import find_secrets

    started = time.perf_counter()
    assert list(find_secrets(text)) == []
    assert time.perf_counter() - started < 5  # quadratic here would take minutes
