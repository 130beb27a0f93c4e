"""What an attempt's answer means for its delivery: succeeded, tried again when, or failed.

Retries back off exponentially from 1 s (capped at an hour per wait, with jitter) on timeouts,
connection errors, 5xx, 408 and 429 (whose `Retry-After` is honoured) for about three days; any
other 4xx is final, and so is a target the pre-send check refused (docs/webhooks.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from pool.kit.clock import utc_now
from pool.vocabulary import DELIVERY_FAILED, DELIVERY_PENDING, DELIVERY_SUCCEEDED
from pool.webhooks import deliveries_repository as repo
from pool.webhooks.claims_repository import Claimed

FIRST_RETRY = 1.0
MAX_WAIT = 3600.0
RETRY_BUDGET = timedelta(days=3)
RETRYABLE = {408, 429}


@dataclass(frozen=True, slots=True)
class Tried:
    """One attempt as it ended: what is recorded, the answer's Retry-After header if any, and
    whether the pre-send check refused the target (then the delivery is final)."""

    attempt: repo.Attempt
    retry_after: str | None = None
    refused: bool = False


def outcome(claimed: Claimed, tried: Tried) -> tuple[str, datetime | None]:
    """(new status, next attempt): succeeded, pending again, or failed for good."""
    attempt = tried.attempt
    code = attempt.status_code
    if tried.refused:
        return DELIVERY_FAILED, None  # the target itself is refused: retrying cannot help
    if code is not None and 200 <= code < 300:
        return DELIVERY_SUCCEEDED, None
    if code is not None and code < 500 and code not in RETRYABLE:
        return DELIVERY_FAILED, None  # the receiver refused it: retrying cannot help
    wait = max(_backoff(claimed.attempts + 1), _retry_after_seconds(tried.retry_after))
    next_at = attempt.attempted_at + timedelta(seconds=wait)
    if next_at - claimed.retry_from > RETRY_BUDGET:
        return DELIVERY_FAILED, None
    return DELIVERY_PENDING, next_at


def _backoff(attempt: int) -> float:
    """1 s, 2 s, 4 s … capped at an hour, with ±10% jitter so retries do not march in step."""
    base: float = min(MAX_WAIT, FIRST_RETRY * 2.0 ** (attempt - 1))
    return base * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security


def _retry_after_seconds(header: str | None) -> float:
    if not header:
        return 0.0
    if header.strip().isdigit():
        return min(MAX_WAIT, float(header.strip()))
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return 0.0
    return float(max(0.0, min(MAX_WAIT, (moment - utc_now()).total_seconds())))
