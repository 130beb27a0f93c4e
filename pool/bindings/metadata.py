"""Binding metadata: a small JSON object that must survive a JavaScript receiver unchanged.

It is stored, returned and sent in webhooks, so it never holds a secret (invariant 9,
docs/design.md): a
private key, WIF, xprv or mnemonic anywhere in it — any key, any string at any depth — refuses
the bind with PRIVATE_KEY_REFUSED, and nothing of it is echoed back.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import orjson

from pool.kit.errors import ValidationFailed
from pool.kit.secret_detection import find_secrets

MAX_KEYS = 50
MAX_BYTES = 4096
MAX_DEPTH = 16
# Beyond ±2^53 a JavaScript receiver silently rounds the number (docs/design.md, Webhooks).
MAX_SAFE_INTEGER = 2**53


def check_metadata(value: Any) -> dict[str, Any] | None:
    """Return the metadata if acceptable; raise ValueError saying what is wrong otherwise.

    A secret in it raises ValidationFailed (PRIVATE_KEY_REFUSED) instead, before anything else.
    """
    if value is None:
        return None
    _refuse_secrets(value)
    if not isinstance(value, dict):
        raise ValueError("metadata must be a JSON object")
    if len(value) > MAX_KEYS:
        raise ValueError(f"metadata may have at most {MAX_KEYS} keys")
    _check_value(value, depth=0)
    if len(orjson.dumps(value)) > MAX_BYTES:
        raise ValueError(f"metadata may be at most {MAX_BYTES} bytes as JSON")
    return value


def _check_value(value: Any, *, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"metadata may nest at most {MAX_DEPTH} levels")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError("metadata integers must be within ±2^53 (JavaScript's safe range)")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("metadata may not contain NaN or Infinity")
        return
    children = value.values() if isinstance(value, dict) else value
    for child in children:
        _check_value(child, depth=depth + 1)


def _refuse_secrets(value: Any) -> None:
    for text in _texts(value):
        found = next(find_secrets(text), None)
        if found is not None:
            message = (
                f"metadata holds what looks like a {found.description}; addrpool never stores "
                "private keys, seeds or xprv: nothing was bound, and treat this key as exposed"
            )
            raise ValidationFailed(
                message,
                code="PRIVATE_KEY_REFUSED",
                details=[{"field": "metadata", "message": message}],
            )


def _texts(value: Any) -> Iterator[str]:
    """Each key and each string on its own, a list's strings together (a phrase given as a list
    of words); never strings from different fields run together, which English could fool."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            yield from (key for key in current if isinstance(key, str))
            stack += current.values()
        elif isinstance(current, list):
            yield "\n".join(item for item in current if isinstance(item, str))
            stack += (item for item in current if not isinstance(item, str))
