"""Money is an int of base units; this only formats it (invariant 10, docs/design.md)."""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import Any

# uint256 has 78 digits; Decimal's default 28-digit context would round large amounts.
EXACT = Context(prec=200)


def format_units(base_units: int, decimals: int) -> str:
    """`100000000, 6` → `"100"`; `500000, 6` → `"0.5"`: plain notation, trailing zeros trimmed.

    Integer arithmetic, exact for any size: a catch-up formats thousands of amounts a second,
    and going through Decimal takes several times as long (docs/performance.md).
    """
    if decimals <= 0:
        return str(base_units * 10**-decimals)
    whole, fraction = divmod(abs(base_units), 10**decimals)
    sign = "-" if base_units < 0 else ""
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"


def sum_in_units(parts: list[tuple[int, int]]) -> str:
    """Sum (base units, decimals) pairs: USDT has 6 decimals on Ethereum but 18 on BSC. Each
    part is brought to the finest scale among them, so the sum is exact."""
    scale = max((decimals for _, decimals in parts), default=0)
    return format_units(sum(units * 10 ** (scale - decimals) for units, decimals in parts), scale)


def parse_units(text: str, decimals: int) -> int:
    """`"0.01", 6` → `10000`. Refuses more fractional digits than the token has."""
    try:
        value = Decimal(text.strip())
    except ArithmeticError as exc:
        raise ValueError(f"{text!r} is not a decimal amount") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} is not a non-negative amount")
    units = value.scaleb(decimals, context=EXACT)
    if units != units.to_integral_value():
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    return int(units)


def same_amount(claimed: Any, ours: str) -> bool:
    """Whether a peer's decimal amount (PayIn's "10.50", 10.5) is ours ("10.5"); not a number
    is not the same."""
    try:
        return EXACT.create_decimal(str(claimed)) == EXACT.create_decimal(ours)
    except InvalidOperation:
        return False
