"""Webhook endpoints' and deliveries' answers (api/routes/webhooks.py)."""

from __future__ import annotations

from pydantic import Field

from api.answers import Answer, Pagination
from pool.vocabulary import SignatureScheme


class WebhookEndpoint(Answer):
    id: str
    url: str
    description: str | None
    events: list[str]
    signatureScheme: SignatureScheme  # noqa: N815
    enabled: bool
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    previousSecretValidUntil: str | None  # noqa: N815


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str


class WebhookEndpointList(Answer):
    endpoints: list[WebhookEndpoint]


class EndpointDeleted(Answer):
    id: str
    deleted: bool
    cancelledDeliveries: int  # noqa: N815


class TestEvent(Answer):
    eventId: str  # noqa: N815
    type: str


class Delivery(Answer):
    id: str
    eventId: str  # noqa: N815
    eventType: str  # noqa: N815
    endpointId: str  # noqa: N815
    status: str = Field(description="pending, succeeded, failed or cancelled")
    attempts: int
    nextAttemptAt: str | None = Field(description="pending deliveries only")  # noqa: N815
    lastAttemptAt: str | None  # noqa: N815
    lastStatusCode: int | None  # noqa: N815
    lastError: str | None  # noqa: N815
    createdAt: str  # noqa: N815
    completedAt: str | None  # noqa: N815


class DeliveryList(Answer):
    deliveries: list[Delivery]
    pagination: Pagination


class Requeued(Answer):
    requeued: int


class Replayed(Answer):
    requeued: int  # deliveries sent again
    created: int  # deliveries made for events the endpoint had none of
    total: int
