"""What evaluating an alert rule decides for one subject: fire, refresh, resolve or nothing,
with the value and details an opened episode records (pool.alerts.engine applies it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pool.alerts import rules
from pool.vocabulary import AlertKind


@dataclass(frozen=True, slots=True)
class Transition:
    kind: AlertKind
    subject: str
    severity: str
    decision: rules.Decision
    value: str
    details: dict[str, Any]
    healthy: bool = False  # not firing, and free addresses above the resolve level
    recheck_in: float = 0.0  # seconds: a refresh left for later (rules.POOL_LOW_REFRESH)
