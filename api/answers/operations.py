"""What operators' routes answer: alerts, reconciliation, health, metrics, PayIn's webhooks in."""

from __future__ import annotations

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from api.answers import Answer, FreeForm, Pagination, Responses, answers


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
    # An operator's actions (docs/operations.md, Alerts).
    acknowledgedAt: str | None = Field(description="the episode's acknowledgement")  # noqa: N815
    acknowledgedBy: str | None  # noqa: N815
    silencedUntil: str | None = Field(  # noqa: N815
        description="the hooks hear nothing of the subject until then"
    )
    silencedBy: str | None  # noqa: N815


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
    # Reports stored before orders were reconciled lack it.
    orderId: str | None = None  # noqa: N815
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
    ordersChecked: int | SkipJsonSchema[None] = None  # noqa: N815
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
    tokenContract: str | None = Field(  # noqa: N815
        description="null for the chain's own coin (`native = true`), which no contract moves"
    )
    count: int
    amount: str
    firstBlock: int  # noqa: N815
    lastBlock: int  # noqa: N815


class Totals(Answer):
    since: str
    until: str
    totals: list[DailyTotal]


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
