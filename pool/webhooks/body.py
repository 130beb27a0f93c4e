"""Webhook bodies: exactly the bytes JavaScript's `JSON.stringify(JSON.parse(body))` prints.

The receiver in PayIn's guide HMACs its own re-serialisation of the parsed body, not the bytes we
sent, so we sign only bodies that are a fixed point of that round trip in V8 (docs/design.md,
Webhooks). Each rule below was checked against node 20; `tests/pool/webhooks/test_body.py` keeps
checking it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any

from pool.bindings.metadata import MAX_SAFE_INTEGER

# json's escaper (C, `encode_basestring`) already escapes as JSON.stringify does: `\"` `\\`
# `\b\f\n\r\t`, other C0 controls as lowercase `\u00xx`, nothing else (not DEL, not U+2028/2029).

# V8 lists "array index" keys (canonical decimal strings of 0..2^32-2) first, ascending, and the
# other keys in insertion order. Matched on the quoted form we already built for the key.
_ARRAY_INDEX = re.compile(r'"(0|[1-9][0-9]{0,9})"')
_MAX_ARRAY_INDEX = 2**32 - 2
_DIGITS = frozenset("0123456789")
_SURROGATE = re.compile("[\ud800-\udfff]")


def body_bytes(event: Mapping[str, Any]) -> bytes:
    """Serialise an event; ValueError for a number JavaScript cannot hold, TypeError for a non-JSON
    value or a non-string key."""
    if not isinstance(event, Mapping):
        raise TypeError(f"an event is a JSON object, not {type(event).__name__}")
    return _encode(event).encode("utf-8")


def _encode(value: Any) -> str:
    # Concrete types first, most common first: an ABC check (Mapping) costs ten times more.
    if isinstance(value, str):
        return encode_basestring(value) if value.isascii() else _string(value)
    if isinstance(value, dict):
        return _object(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join([_encode(item) for item in value]) + "]"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Mapping):
        return _object(value)
    raise TypeError(f"{type(value).__name__} has no JSON form in a webhook body")


def _object(value: Mapping[Any, Any]) -> str:
    return "{" + ",".join([key + ":" + _encode(item) for key, item in _members(value)]) + "}"


def _members(value: Mapping[Any, Any]) -> Iterable[tuple[str, Any]]:
    """(quoted key, value) in the order V8 gives the keys of the object JSON.parse builds."""
    members: dict[str, Any] = {}
    indexed: list[str] = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
        quoted = encode_basestring(key) if key.isascii() else _string(key)
        if key[:1] in _DIGITS and quoted not in members and _is_array_index(quoted):
            indexed.append(quoted)
        # Two Python keys can be one JavaScript key (a surrogate pair written as two code points);
        # JSON.parse then keeps the first position and the last value, and so does a dict.
        members[quoted] = item
    if not indexed:
        return members.items()
    indexed.sort(key=lambda quoted: int(quoted[1:-1]))
    others = [key for key in members if not _is_array_index(key)]
    return [(key, members[key]) for key in indexed + others]


def _is_array_index(quoted_key: str) -> bool:
    match = _ARRAY_INDEX.fullmatch(quoted_key)
    return match is not None and int(match.group(1)) <= _MAX_ARRAY_INDEX


def _string(text: str) -> str:
    if _SURROGATE.search(text) is None:
        return encode_basestring(text)
    # JavaScript strings are UTF-16: a pair held as two code points is one character, printed raw;
    # a lone half is escaped by the well-formed JSON.stringify (ES2019).
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", encode_basestring(text))


def _integer(value: int) -> str:
    # Beyond ±2^53 a JavaScript receiver silently rounds the number, so its HMAC would not match.
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"integer {value} is beyond ±2^53; JavaScript cannot hold it exactly")
    return int.__repr__(value)


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} has no JSON form")
    if value.is_integer() and -MAX_SAFE_INTEGER < value < MAX_SAFE_INTEGER:
        return int.__repr__(int(value))  # 1.0 → "1", and -0.0 → "0" as in JavaScript
    return _number_to_string(float.__repr__(value))


def _number_to_string(shortest: str) -> str:
    """ECMA-262 Number::toString from Python's repr, which has the same shortest round-trip digits
    but other thresholds for the exponent form."""
    sign = "-" if shortest.startswith("-") else ""
    mantissa, _, exponent = shortest.removeprefix("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # value = 0.<digits> × 10^point, the spec's n
    point = len(digits) + int(exponent or 0) - len(fraction)
    digits = digits.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    power = point - 1
    fraction_part = "." + digits[1:] if count > 1 else ""
    return f"{sign}{digits[0]}{fraction_part}e{'+' if power >= 0 else '-'}{abs(power)}"
