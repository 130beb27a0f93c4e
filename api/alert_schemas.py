"""Request bodies of an operator's actions on an alert (docs/api.md, Operations); the answer
is the alert (api/answers/operations.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from api.schemas import Request
from pool.alerts.actions import REASON_MAX, SILENCE_MINUTES_MAX, SILENCE_MINUTES_MIN

Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=REASON_MAX)
]


class AlertActionBody(Request):
    reason: Reason = Field(description="why: kept in the audit log with the key")


class AlertSilenceBody(AlertActionBody):
    minutes: int = Field(
        ge=SILENCE_MINUTES_MIN,
        le=SILENCE_MINUTES_MAX,
        description="how long the hooks stay quiet about the alert's subject",
    )
