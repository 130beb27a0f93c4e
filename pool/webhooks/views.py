"""How a webhook endpoint and a delivery look to the outside: the API's answers and the CLI's
`--json` output are both these (`api/routes/webhooks.py`, `scripts/cli/webhooks.py`)."""

from __future__ import annotations

from typing import Any

from pool.kit.clock import isoformat_z, isoformat_z_or_none
from pool.vocabulary import DELIVERY_PENDING
from pool.webhooks.endpoints import Endpoint
from pool.webhooks.endpoints_repository import DeliveryRow


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "signatureScheme": endpoint.signature_scheme,
        "enabled": endpoint.enabled,
        "createdAt": isoformat_z(endpoint.created_at),
        "updatedAt": isoformat_z(endpoint.updated_at),
        "previousSecretValidUntil": isoformat_z_or_none(endpoint.previous_secret_expires_at),
    }


def delivery_view(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "eventId": row.event_id,
        "eventType": row.event_type,
        "endpointId": row.endpoint_id,
        "status": row.status,
        "attempts": row.attempts,
        "nextAttemptAt": (
            isoformat_z_or_none(row.next_attempt_at) if row.status == DELIVERY_PENDING else None
        ),
        "lastAttemptAt": isoformat_z_or_none(row.last_attempt_at),
        "lastStatusCode": row.last_status_code,
        "lastError": row.last_error,
        "createdAt": isoformat_z(row.created_at),
        "completedAt": isoformat_z_or_none(row.completed_at),
    }
