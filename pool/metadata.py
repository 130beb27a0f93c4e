"""Binding metadata: a small JSON object that must survive a JavaScript receiver unchanged."""

from __future__ import annotations

import math
from typing import Any

import orjson

MAX_KEYS = 50
MAX_BYTES = 4096
MAX_DEPTH = 16
# Beyond ±2^53 a JavaScript receiver silently rounds the number (DESIGN.md, Webhooks).
MAX_SAFE_INTEGER = 2**53


def check_metadata(value: Any) -> dict[str, Any] | None:
    """Return the metadata if acceptable; raise ValueError saying what is wrong otherwise."""
    if value is None:
        return None
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
