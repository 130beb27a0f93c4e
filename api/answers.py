"""What the API answers, for the OpenAPI document only.

The routes build their bodies themselves (api/views.py, the payload functions in pool/,
api/responses.py); these models only describe them, so a client can be generated, and
tests/api/test_openapi.py checks real answers against them. Every `data` is a model with its
fields typed: only user JSON (a binding's `metadata`) and per-kind details (an alert's
`details`, an error's `details`) stay free-form objects. Extra fields are allowed: a client
must accept a field added later. A field shown `X | SkipJsonSchema[None] = None` is typed `X`
and may be absent; `X | None` may also be null on the wire.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import SkipJsonSchema

from pool.vocabulary import Protocol, SignatureScheme


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


FreeForm = dict[str, Any]  # JSON a user or an alert kind chose: no fixed shape


class ErrorEnvelope(Answer):
    """Every 4xx and 5xx (docs/api.md, Errors)."""

    success: Literal[False]
    error: str
    code: str
    message: str
    details: list[FreeForm] | None = None


class Pagination(Answer):
    page: int
    limit: int
    total: int
    totalPages: int  # noqa: N815 - the wire name


# --- Deposits API ------------------------------------------------------------------------


class Binding(Answer):
    depositReference: str  # noqa: N815
    address: str
    protocol: Protocol
    monitoredChains: list[str]  # noqa: N815
    createdAt: str  # noqa: N815
    metadata: FreeForm | None


class UnboundAddress(Answer):
    protocol: Protocol
    address: str
    cooldownUntil: str | None = None  # noqa: N815


class Unbinding(Answer):
    depositReference: str | None = None  # noqa: N815
    unbound: list[UnboundAddress]


class BoundReference(Answer):
    depositReference: str  # noqa: N815
    protocol: Protocol
    address: str
    boundAt: str | None = None  # noqa: N815


class ReferenceSummary(BoundReference):
    totalDeposits: int  # noqa: N815
    totalAmount: str = Field(description="credited, summed over every currency")  # noqa: N815


class ReferenceList(Answer):
    references: list[ReferenceSummary]
    pagination: Pagination


class BindingHistory(Answer):
    address: str
    protocol: Protocol
    boundAt: str  # noqa: N815
    unboundAt: str | None = None  # noqa: N815
    cooldownUntil: str | None = None  # noqa: N815


class Reference(BoundReference):
    """In upstream mode this is PayIn's answer as it came: only the first three fields are
    certain; the others are typed as addrpool sends them."""

    totalDeposits: int | SkipJsonSchema[None] = None  # noqa: N815
    totalAmount: str | SkipJsonSchema[None] = None  # noqa: N815
    totals: dict[str, str] | SkipJsonSchema[None] = Field(
        default=None, description="credited amount per currency"
    )
    metadata: FreeForm | None = None
    bindings: list[BindingHistory]
    monitoredChains: list[str] | SkipJsonSchema[None] = None  # noqa: N815


class Deposit(Answer):
    depositId: str  # noqa: N815
    depositReference: str | None = None  # noqa: N815
    address: str
    protocol: Protocol
    chainId: str  # noqa: N815
    currency: str
    amount: str
    txHash: str  # noqa: N815
    status: str = Field(description="pending, confirmed, completed, reverted or dust")
    confirmations: int
    requiredConfirmations: int | None  # noqa: N815
    logIndex: int  # noqa: N815
    blockNumber: int  # noqa: N815
    from_: str = Field(alias="from")
    late: bool
    detectedAt: str  # noqa: N815
    confirmedAt: str | None  # noqa: N815
    completedAt: str | None  # noqa: N815


class DepositList(Answer):
    deposits: list[Deposit]
    pagination: Pagination


# --- Address pool --------------------------------------------------------------------------


class PoolSummary(Answer):
    total: int
    available: int
    bound: int
    coolingDown: int  # noqa: N815
    archived: int
    threshold: int
    belowThreshold: bool  # noqa: N815
    projectedExhaustionAt: str | None  # noqa: N815
    inUse: bool  # noqa: N815


class PoolSummaries(Answer):
    evm: PoolSummary
    tron: PoolSummary


class Availability(PoolSummary):
    protocol: Protocol


class PoolAddress(Answer):
    """An archive answers the first three fields; a listing all of them."""

    address: str
    protocol: Protocol
    status: str = Field(description="available, bound, cooling_down or archived")
    derivationIndex: int | None = None  # noqa: N815
    depositReference: str | None = None  # noqa: N815
    boundAt: str | None = None  # noqa: N815
    cooldownUntil: str | None = None  # noqa: N815
    createdAt: str | SkipJsonSchema[None] = None  # noqa: N815


class AddressList(Answer):
    addresses: list[PoolAddress]
    pagination: Pagination


class ImportProblem(Answer):
    """A refused row (`line`: its line, or its position in a JSON list) or request field."""

    line: int | None = None
    field: str | SkipJsonSchema[None] = None
    value: str
    message: str
    kind: str


class ImportSummary(Answer):
    protocol: Protocol
    imported: int
    duplicates: int
    duplicatesInInput: int  # noqa: N815
    alreadyInPool: int  # noqa: N815
    invalid: list[ImportProblem] = Field(description="the first 100")
    invalidCount: int  # noqa: N815
    invalidByKind: dict[str, int]  # noqa: N815
    batchId: int | None  # noqa: N815
    dryRun: bool  # noqa: N815
    skipped: int
    fingerprint: str | SkipJsonSchema[None] = Field(
        default=None, description="the extended public key's fingerprint (xpub imports)"
    )


# --- Webhooks ------------------------------------------------------------------------------


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


# --- Alerts and reconciliation -------------------------------------------------------------


class Alert(Answer):
    id: int
    kind: str
    subject: str
    severity: str
    state: str = Field(description="firing or resolved")
    value: str | None
    details: FreeForm | None = Field(description="what the alert's kind tells about it")
    firstFiredAt: str  # noqa: N815
    lastFiredAt: str  # noqa: N815
    resolvedAt: str | None  # noqa: N815


class AlertList(Answer):
    alerts: list[Alert]
    pagination: Pagination


class ChainAudit(Answer):
    """What a run read from one chain; `error` when no endpoint could serve it."""

    endpoint: str | None = None
    head: int | None = None
    verifiedOnChain: int | SkipJsonSchema[None] = None  # noqa: N815
    reverted: int | SkipJsonSchema[None] = None
    rescanned: list[dict[str, int]] | SkipJsonSchema[None] = None
    error: str | None = None


class ReportRepairs(Answer):
    requeuedDeliveries: int  # noqa: N815
    announced: int
    reverted: int
    rescannedRanges: int  # noqa: N815


class ReportAlerts(Answer):
    fired: int
    resolved: int


class ReportItem(Answer):
    category: str
    severity: str
    depositId: str | None  # noqa: N815
    chainId: str  # noqa: N815
    txHash: str | None  # noqa: N815
    blockNumber: int | None  # noqa: N815
    detail: str


class Report(Answer):
    """Fields past `since` come from the stored run: a report stored by an older version may
    lack the newer ones."""

    id: int
    startedAt: str  # noqa: N815
    finishedAt: str  # noqa: N815
    since: str
    chains: dict[str, ChainAudit] | SkipJsonSchema[None] = None
    depositsChecked: int | SkipJsonSchema[None] = None  # noqa: N815
    counts: dict[str, int] | SkipJsonSchema[None] = Field(
        default=None, description="findings per category (docs/operations.md, Reconciliation)"
    )
    discrepancies: int | SkipJsonSchema[None] = None
    repairs: ReportRepairs | SkipJsonSchema[None] = None
    alerts: ReportAlerts | SkipJsonSchema[None] = None
    durationMs: int | SkipJsonSchema[None] = None  # noqa: N815
    restedMs: int | SkipJsonSchema[None] = None  # noqa: N815
    items: list[ReportItem]


class DailyTotal(Answer):
    date: str
    chainId: str  # noqa: N815
    currency: str
    tokenContract: str  # noqa: N815
    count: int
    amount: str
    firstBlock: int  # noqa: N815
    lastBlock: int  # noqa: N815


class Totals(Answer):
    since: str
    until: str
    totals: list[DailyTotal]


# --- The envelope and a route's `responses=` -----------------------------------------------


def envelope(data: Any, name: str) -> type[BaseModel]:
    """`{"success": true, "data": …, "message"?}` around `data`, as a named model."""
    model: type[BaseModel] = create_model(
        name,
        __base__=Answer,
        success=(Literal[True], ...),
        data=(data, ...),
        message=(str | None, None),
    )
    return model


SUCCESS = {200: "OK", 201: "Created", 202: "Accepted"}
Responses = dict[int | str, dict[str, Any]]


def answers(data: Any, name: str, *errors: int, success: tuple[int, ...] = (200,)) -> Responses:
    """A route's `responses=`: the success envelope around `data` (a model named `name`) for
    each `success` status, and the error statuses it sends besides those every route can
    (api/openapi.py adds 400 and 413, 401/403/429 and the rate-limit headers on keyed routes,
    404 where a path has a parameter; each error gets the error envelope)."""
    model = envelope(data, name)
    documented: Responses = {
        status: {"model": model, "description": SUCCESS[status]} for status in success
    }
    for status in errors:
        documented[status] = {}
    return documented


# --- Routes outside the envelope -----------------------------------------------------------


class EndpointHealth(Answer):
    endpoint: str
    state: str = Field(description="ok or set_aside")
    reason: str | None = None
    head: int | None = None
    failures: int | SkipJsonSchema[None] = None
    retryInSeconds: float | None = None  # noqa: N815
    retryAt: str | None = None  # noqa: N815


class ChainHealth(Answer):
    """A watched chain's state as its watcher last wrote it, or `{watched: false, reason}`."""

    watched: bool
    reason: str | SkipJsonSchema[None] = None
    head: int | SkipJsonSchema[None] = None
    cursor: int | SkipJsonSchema[None] = None
    lag: int | SkipJsonSchema[None] = None
    confirmations: int | SkipJsonSchema[None] = None
    endpoint: str | None = None
    endpoints: list[EndpointHealth] | SkipJsonSchema[None] = None
    headSeenAt: str | None = None  # noqa: N815
    updatedAt: str | SkipJsonSchema[None] = None  # noqa: N815


class HealthChecks(Answer):
    database: str = Field(description="ok or unreachable")
    chains: dict[str, ChainHealth]


class Health(Answer):
    """`GET /health`: not an envelope (PayIn's shape); 503 with the same body when the
    database cannot be reached."""

    status: str = Field(description="healthy, degraded or unhealthy")
    timestamp: str
    version: str
    network: str
    checks: HealthChecks
    problems: list[str]
    monitoredChains: dict[str, list[str]]  # noqa: N815


HEALTH_ANSWERS: Responses = {
    200: {"model": Health, "description": "Healthy, or degraded (see problems)"},
    503: {"model": Health, "description": "The database cannot be reached"},
}
METRICS_ANSWERS: Responses = {
    200: {
        "description": "Prometheus text exposition",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    401: {"description": "A metrics token is configured and was not presented"},
}


class Received(Answer):
    received: bool
    duplicate: bool


# PayIn's webhooks in (upstream mode): a bad signature is 401; storing may meet a busy SQLite.
UPSTREAM_ANSWERS = {**answers(Received, "UpstreamWebhookAnswer"), 401: {}, 503: {}}
