"""Money is an int of base units; this only formats it (Invariant 10)."""

from __future__ import annotations

from decimal import Decimal


def format_units(base_units: int, decimals: int) -> str:
    """`100000000, 6` → `"100"`; `500000, 6` → `"0.5"`: plain notation, trailing zeros trimmed."""
    value = Decimal(base_units).scaleb(-decimals)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def sum_in_units(parts: list[tuple[int, int]]) -> str:
    """Sum (base units, decimals) pairs: USDT has 6 decimals on Ethereum but 18 on BSC."""
    total = sum((Decimal(units).scaleb(-decimals) for units, decimals in parts), Decimal(0))
    text = format(total, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
