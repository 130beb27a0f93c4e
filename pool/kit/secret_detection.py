"""Recognise private keys in what operators send (invariant 9, docs/design.md): addrpool is
watch-only.

Whatever looks like a secret is refused, and never echoed back, stored or logged. A secret is
found anywhere in a text — a whole field, inside a field, after other text, quoted, in any
column — not only as a whole field:
- a raw key: a run of exactly 64 hex digits between non-hex characters, `0x` or not (a 40-hex
  address, a 130-hex signature or a longer hex blob is no key; a 64-hex transaction hash looks
  exactly like one and is refused too);
- a WIF key: a base58 token of 51 or 52 characters whose base58check payload has version
  0x80 or 0xEF;
- an extended private key: a base58 token of 51 characters or more starting `xprv`, `tprv`, …
  (a truncated one still gives most of the key away);
- a BIP39 mnemonic: 12 or more consecutive words of the English wordlist, separated by anything
  that is neither a letter nor a digit (spaces, commas, quotes, line breaks); list numbers such
  as `1.` or `2)` between the words do not break the run.
Tokens end wherever a character is neither a letter nor a digit, so `key=`, quotes, `;` or
brackets around a secret change nothing.

The scan stays linear and cheap on a million-line import: every key form is a run of at least
51 letters and digits, which a byte translation and one `find` rule out for a file of 34- and
42-character addresses; word runs are looked for by one expression that starts at separators.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import base58
from mnemonic import Mnemonic

REFUSAL = (
    "this looks like a {kind}; addrpool never takes private keys, seeds or xprv "
    "(it is watch-only): import addresses or an xpub instead, and treat this key as exposed"
)
REDACTED = "[redacted]"
KINDS = {
    "raw_private_key": "raw private key (64 hex characters)",
    "wif_private_key": "WIF private key",
    "extended_private_key": "extended private key (xprv)",
    "mnemonic": "BIP39 mnemonic phrase",
}
MIN_MNEMONIC_WORDS = 12
SHORTEST_KEY = 51  # a WIF key; a raw key is 64, an extended key 111

_EXTENDED_PRIVATE = ("xprv", "tprv", "yprv", "zprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv")
_WIF_VERSIONS = (0x80, 0xEF)  # Bitcoin-style mainnet / testnet
_TOKEN_BYTES = (string.ascii_letters + string.digits).encode("ascii")
_TOKEN_CLASSES = bytes(ord("t") if byte in _TOKEN_BYTES else ord(" ") for byte in range(256))
_LONG_TOKEN = b"t" * SHORTEST_KEY
_HEX_KEY = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_BASE58_TOKEN = re.compile(r"(?<![1-9A-HJ-NP-Za-km-z])[1-9A-HJ-NP-Za-km-z]{51,}")
_WORD = re.compile(r"[A-Za-z]+")
# BIP39 English words are 3 to 8 letters; between two of them, separators and list numbers.
_WORD_RUN = (
    r"[A-Za-z]{3,8}(?:[^0-9A-Za-z]+(?:[0-9]{1,2}[^0-9A-Za-z]+)*[A-Za-z]{3,8}){11,}(?![0-9A-Za-z])"
)
_LONG_RUN = r"[0-9A-Za-z]{51,}"


@dataclass(frozen=True, slots=True)
class FoundSecret:
    kind: str  # a key of KINDS
    start: int
    end: int

    @property
    def description(self) -> str:
        return KINDS[self.kind]


def find_secrets(text: str) -> Iterator[FoundSecret]:
    """Every secret in `text`, in the order they start (never two overlapping)."""
    end = 0
    for found in heapq.merge(_keys(text), _mnemonics(text), key=lambda f: f.start):
        if found.start >= end:
            end = found.end
            yield found


def secret_kind(value: str) -> str | None:
    """What kind of secret `value` holds anywhere in it (as words for a person), or None."""
    found = next(find_secrets(value), None)
    return None if found is None else found.description


def refusal(kind: str) -> str:
    return REFUSAL.format(kind=kind)


def json_strings(value: Any) -> Iterator[str]:
    """Every string of a JSON value, object keys included, in document order."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            for key, child in reversed(current.items()):
                stack += (child, key)
        elif isinstance(current, list):
            stack += reversed(current)


class _StartsAfterSeparator:
    """A pattern matched where a token starts: at the text's start or after a separator.

    Anchoring on the separator (instead of a look-behind) lets the regular expression engine
    skip through long tokens: faster than the look-behind on a file of addresses
    (docs/performance.md).
    """

    def __init__(self, body: str) -> None:
        self._at_start = re.compile(f"({body})")
        self._after_separator = re.compile(f"[^0-9A-Za-z]({body})")

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        position = 0
        first = self._at_start.match(text)
        if first is not None:
            position = first.end()
            yield first.span(1)
        for match in self._after_separator.finditer(text, position):
            yield match.span(1)


_LONG_RUNS = _StartsAfterSeparator(_LONG_RUN)
_WORD_RUNS = _StartsAfterSeparator(_WORD_RUN)


def _keys(text: str) -> Iterator[FoundSecret]:
    if _LONG_TOKEN not in text.encode("utf-8", "replace").translate(_TOKEN_CLASSES):
        return
    last_run, last_found = "", []  # a CSV repeats its xpub on every row: check it once
    for start, end in _LONG_RUNS.spans(text):
        run = text[start:end]
        if run != last_run:
            last_run, last_found = run, _keys_in_run(run)
        for kind, offset, stop in last_found:
            yield FoundSecret(kind, start + offset, start + stop)


def _keys_in_run(run: str) -> list[tuple[str, int, int]]:
    """The keys in one run of letters and digits: (kind, start, end) within the run."""
    found = [("raw_private_key", *match.span()) for match in _HEX_KEY.finditer(run)]
    for match in _BASE58_TOKEN.finditer(run):
        token = match.group()
        if token.startswith(_EXTENDED_PRIVATE):
            found.append(("extended_private_key", *match.span()))
        elif _is_wif(token):
            found.append(("wif_private_key", *match.span()))
    return sorted(found, key=lambda item: item[1])


def _is_wif(token: str) -> bool:
    if len(token) not in (51, 52):
        return False
    raw = base58.b58decode(token)  # only base58 characters reach here
    payload, checksum = raw[:-4], raw[-4:]
    if len(payload) not in (33, 34) or payload[0] not in _WIF_VERSIONS:
        return False
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum


@cache
def _english_words() -> frozenset[str]:
    return frozenset(Mnemonic("english").wordlist)


def _mnemonics(text: str) -> Iterator[FoundSecret]:
    for start, end in _WORD_RUNS.spans(text):
        yield from _mnemonics_in(text, start, end)


def _mnemonics_in(text: str, start: int, end: int) -> Iterator[FoundSecret]:
    """Each stretch of ≥ 12 consecutive wordlist words in a run of short words."""
    english = _english_words()
    count, first, last = 0, start, start
    for word in _WORD.finditer(text, start, end):
        if word.group().lower() in english:
            first = word.start() if count == 0 else first
            count, last = count + 1, word.end()
            continue
        if count >= MIN_MNEMONIC_WORDS:
            yield FoundSecret("mnemonic", first, last)
        count = 0
    if count >= MIN_MNEMONIC_WORDS:
        yield FoundSecret("mnemonic", first, last)
