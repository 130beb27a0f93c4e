"""Alert rules as pure decisions: given what was measured and whether the alert is firing,
fire, refresh the open episode with the measure, resolve, or leave it (docs/design.md, Alerts).
Hysteresis lives here, so nothing flaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pool.kit.config import AlertSettings
from pool.vocabulary import Protocol

# "refresh": the episode stays open, its value (and severity) as measured now.
Decision = Literal["fire", "refresh", "resolve"] | None
# A firing pool_low's value is written at most this often after binds (a severity change at
# once): near an empty pool every bind would otherwise cost a write and a count of the pool.
POOL_LOW_REFRESH = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class PoolLowBounds:
    fire_below: int  # fires when free addresses < this
    resolve_above: int  # resolves when free addresses > this (threshold plus the margin)

    @property
    def count_cap(self) -> int:
        """Counting free addresses past this tells nothing more: the pool is healthy."""
        return self.resolve_above + 1


def pool_low_bounds(settings: AlertSettings, protocol: Protocol, total: int) -> PoolLowBounds:
    """The absolute threshold, or the percentage one when it asks for more addresses."""
    percent = settings.percent_thresholds.get(protocol, 0.0)
    fire_below = max(settings.threshold(protocol), math.ceil(total * percent / 100))
    return PoolLowBounds(fire_below, math.floor(fire_below * (1 + settings.margin)))


def pool_low(available: int, bounds: PoolLowBounds, *, firing: bool) -> Decision:
    if available < bounds.fire_below:
        return "refresh" if firing else "fire"
    if available > bounds.resolve_above:
        return "resolve" if firing else None
    return "refresh" if firing else None  # between the two: it stays as it was (no flapping)


def pool_low_severity(available: int) -> str:
    return "critical" if available == 0 else "warning"


def refresh_wait(
    *, severity: str, firing_severity: str, last_fired_at: datetime, now: datetime
) -> float:
    """Seconds before a firing pool_low is worth writing again: none when its severity changes
    (the hooks hear of that at once), else what is left of POOL_LOW_REFRESH."""
    if severity != firing_severity:
        return 0.0
    return max(0.0, (last_fired_at + POOL_LOW_REFRESH - now).total_seconds())


def percentage(available: int, total: int) -> str:
    """PayIn's `percentage`: a decimal string, e.g. "3.6"."""
    if total == 0:
        return "0"
    exact = Decimal(available * 100) / Decimal(total)
    text = format(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def projected_exhaustion(
    available: int, binds_in_window: int, window: timedelta, now: datetime
) -> datetime | None:
    """When the free addresses run out at the recent bind rate; None if nobody binds.

    The gross bind rate: addresses coming back from cooldown are not netted out, so the
    projection errs early, which is the safe side for an early warning.
    """
    if binds_in_window <= 0:
        return None
    per_second = binds_in_window / window.total_seconds()
    return now + timedelta(seconds=available / per_second)


def exhaustion(
    projected: datetime | None, *, now: datetime, settings: AlertSettings, firing: bool
) -> Decision:
    horizon = settings.exhaustion_horizon
    if projected is not None and projected - now < horizon:
        return "refresh" if firing else "fire"
    if projected is None or projected - now > horizon * (1 + settings.margin):
        return "resolve" if firing else None
    return "refresh" if firing else None


def over_limit(value: float, limit: float, *, firing: bool) -> Decision:
    """A plain `value > limit` rule: fires above, resolves at or below."""
    if value > limit:
        return "refresh" if firing else "fire"
    return "resolve" if firing else None
