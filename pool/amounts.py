"""Money is an int of base units; this only formats it (Invariant 10)."""

from __future__ import annotations

from decimal import Context, Decimal

# uint256 has 78 digits; Decimal's default 28-digit context would round large amounts.
EXACT = Context(prec=200)


def _in_units(base_units: int, decimals: int) -> Decimal:
    return Decimal(base_units).scaleb(-decimals, context=EXACT)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def format_units(base_units: int, decimals: int) -> str:
    """`100000000, 6` → `"100"`; `500000, 6` → `"0.5"`: plain notation, trailing zeros trimmed."""
    return _plain(_in_units(base_units, decimals))


def sum_in_units(parts: list[tuple[int, int]]) -> str:
    """Sum (base units, decimals) pairs: USDT has 6 decimals on Ethereum but 18 on BSC."""
    total = Decimal(0)
    for units, decimals in parts:
        total = EXACT.add(total, _in_units(units, decimals))
    return _plain(total)
