"""The webhook rules: too many failed attempts to an endpoint within a window
(`webhook_failures`), and an endpoint whose oldest undelivered event has been failing too long
(`webhook_endpoint_failing`). Evaluated by pool.alerts.engine's timer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts import monitoring_repository as monitoring
from pool.alerts import rules
from pool.alerts.repository import firing_by_kind
from pool.alerts.transition import Transition
from pool.kit.clock import isoformat_z
from pool.kit.config import AlertSettings
from pool.vocabulary import WEBHOOK_ENDPOINT_FAILING, WEBHOOK_FAILURES, AlertKind


async def webhook_failure_transitions(
    conn: AsyncConnection, settings: AlertSettings, now: datetime
) -> list[Transition]:
    window = settings.webhook_failures_window
    failing = await monitoring.failed_attempts_by_endpoint(conn, since=now - window)
    open_ = {s.split(":", 1)[1] for s in await firing_by_kind(conn, WEBHOOK_FAILURES)}
    found = []
    for endpoint_id in sorted(set(failing) | open_):
        count = failing.get(endpoint_id, 0)
        subject = f"{WEBHOOK_FAILURES}:{endpoint_id}"
        decision = rules.over_limit(count, settings.webhook_failures, firing=endpoint_id in open_)
        details = {
            "endpointId": endpoint_id,
            "failedAttempts": count,
            "windowSeconds": int(window.total_seconds()),
        }
        found.append(
            Transition(WEBHOOK_FAILURES, subject, "warning", decision, str(count), details)
        )
    return found


async def endpoint_failing_transitions(
    conn: AsyncConnection, settings: AlertSettings, now: datetime
) -> list[Transition]:
    """An endpoint whose oldest undelivered event has been failing longer than
    `webhook_failing_after`, however few the attempts: the one alert a dead receiver at low
    traffic raises before its events' retry budgets run out (days later). An endpoint the
    operator disabled or deleted is not watched (its open alert resolves)."""
    kind: AlertKind = WEBHOOK_ENDPOINT_FAILING
    open_ = {s.split(":", 1)[1] for s in await firing_by_kind(conn, kind)}
    live = set(await monitoring.live_endpoints(conn))
    limit = settings.webhook_failing_after.total_seconds()
    found = []
    for endpoint_id in sorted(live | open_):
        failing = None
        if endpoint_id in live:
            failing = await monitoring.oldest_failing_delivery(conn, endpoint_id=endpoint_id)
        seconds = (now - failing.failing_since).total_seconds() if failing else 0.0
        decision = rules.over_limit(seconds, limit, firing=endpoint_id in open_)
        details = _endpoint_failing_details(endpoint_id, failing, seconds, limit)
        subject = f"{kind}:{endpoint_id}"
        found.append(Transition(kind, subject, "warning", decision, str(int(seconds)), details))
    return found


def _endpoint_failing_details(
    endpoint_id: str, failing: monitoring.FailingDelivery | None, seconds: float, limit: float
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "endpointId": endpoint_id,
        "failingSeconds": int(seconds),
        "thresholdSeconds": int(limit),
    }
    if failing is not None:
        details |= {
            "deliveryId": failing.delivery_id,
            "failingSince": isoformat_z(failing.failing_since),
            "attempts": failing.attempts,
            "lastStatusCode": failing.last_status_code,
            "lastError": failing.last_error,
        }
    return details
