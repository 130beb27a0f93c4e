"""Request bodies and query parameters. Unknown fields are ignored (docs/api.md, Conventions)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from pool.addresses.import_problems import (
    Problems,
    refuse_secrets,
    secrets_in_fields,
    secrets_in_items,
    secrets_in_text,
)
from pool.bindings.metadata import check_metadata
from pool.vocabulary import Protocol, SignatureScheme

REFERENCE_PATTERN = r"^[A-Za-z0-9._:@-]{1,255}$"
DepositReference = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=REFERENCE_PATTERN)
]
ProtocolName = Protocol


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class BindRequest(Request):
    deposit_reference: DepositReference = Field(alias="depositReference")
    protocol: ProtocolName
    metadata: dict[str, Any] | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_is_safe(cls, value: Any) -> Any:
        return check_metadata(value)


class UnbindRequest(Request):
    deposit_reference: DepositReference | None = Field(default=None, alias="depositReference")
    protocol: ProtocolName | None = None
    address: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class ImportRequest(Request):
    """An import refuses a private key anywhere in it (invariant 9, docs/design.md), before
    anything else is checked: in its rows, in any field of a row, in any other field of the
    request — unknown fields included, which are otherwise ignored. Nothing of it is echoed
    back."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_secrets(cls, data: Any) -> Any:
        # ValidationFailed is no ValueError: pydantic lets it through to the error handler.
        refuse_secrets(secrets_in_request(data))
        return data


def secrets_in_request(data: Any) -> Problems:
    """`addresses` rows by position, `csv` text by line, any other field by name."""
    if not isinstance(data, dict):
        return secrets_in_fields([("body", data)])
    problems = Problems()
    others: list[tuple[str, Any]] = []
    for name, value in data.items():
        if name == "addresses" and isinstance(value, list):
            problems.extend(secrets_in_items(value))
        elif name == "csv" and isinstance(value, str):
            problems.extend(secrets_in_text(value))
        else:
            others.append((name, value))
    problems.extend(secrets_in_fields(others))
    return problems


class ImportBody(ImportRequest):
    """`POST /api/v1/address-pool/addresses`: a list (as in a JSON file) or CSV/lines text."""

    protocol: ProtocolName
    addresses: list[str | dict[str, Any]] | None = None
    csv: str | None = None
    format: Literal["auto", "lines", "csv"] = "auto"
    skip_invalid: bool = Field(default=False, alias="skipInvalid")
    dry_run: bool = Field(default=False, alias="dryRun")


class XpubImportBody(ImportRequest):
    """`POST /api/v1/address-pool/xpub`: derive `count` addresses from `start` below `branch`."""

    protocol: ProtocolName
    xpub: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    start: int = Field(default=0, ge=0, lt=2**31)
    count: int = Field(ge=1, le=1_000_000)
    branch: int = Field(default=0, ge=0, lt=2**31)
    dry_run: bool = Field(default=False, alias="dryRun")


class Page(BaseModel):
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


async def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page:
    return Page(page=page, limit=limit)


class WebhookEndpointBody(Request):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    events: list[Annotated[str, StringConstraints(max_length=64)]] = Field(max_length=32)
    signature_scheme: SignatureScheme = Field(default="body", alias="signatureScheme")
    description: Annotated[str, StringConstraints(max_length=255)] | None = None


class WebhookEndpointPatch(Request):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    events: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None, max_length=32
    )
    signature_scheme: SignatureScheme | None = Field(default=None, alias="signatureScheme")
    description: Annotated[str, StringConstraints(max_length=255)] | None = None
    enabled: bool | None = None


# --- Responses, for the OpenAPI document only ------------------------------------------------
# The routes build their bodies themselves (api/views.py, api/responses.py); these models only
# describe them, so a client can be generated. Extra fields are allowed: a client must accept
# a field added later.


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorEnvelope(Answer):
    """Every 4xx and 5xx (docs/api.md, Errors)."""

    success: Literal[False]
    error: str
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class Pagination(Answer):
    page: int
    limit: int
    total: int
    totalPages: int  # noqa: N815 - the wire name


class Binding(Answer):
    depositReference: str  # noqa: N815
    address: str
    protocol: ProtocolName
    monitoredChains: list[str]  # noqa: N815
    createdAt: str  # noqa: N815
    metadata: dict[str, Any] | None = None


class UnboundAddress(Answer):
    protocol: ProtocolName
    address: str
    cooldownUntil: str | None = None  # noqa: N815


class Unbinding(Answer):
    depositReference: str | None = None  # noqa: N815
    unbound: list[UnboundAddress]


class ReferenceSummary(Answer):
    depositReference: str  # noqa: N815
    protocol: ProtocolName
    address: str
    boundAt: str | None = None  # noqa: N815


class ReferenceList(Answer):
    references: list[ReferenceSummary]
    pagination: Pagination


class Deposit(Answer):
    depositId: str  # noqa: N815
    depositReference: str | None = None  # noqa: N815
    address: str
    protocol: ProtocolName
    chainId: str  # noqa: N815
    currency: str
    amount: str
    txHash: str  # noqa: N815
    status: str
    confirmations: int | None = None
    requiredConfirmations: int | None = None  # noqa: N815


class DepositList(Answer):
    deposits: list[Deposit]
    pagination: Pagination


class PoolAddress(Answer):
    address: str
    protocol: ProtocolName
    status: str


class AddressList(Answer):
    addresses: list[PoolAddress]
    pagination: Pagination


class WebhookEndpoint(Answer):
    id: str
    url: str
    events: list[str]
    signatureScheme: SignatureScheme  # noqa: N815
    enabled: bool


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str


class WebhookEndpointList(Answer):
    endpoints: list[WebhookEndpoint]


class Delivery(Answer):
    id: str
    eventId: str  # noqa: N815
    eventType: str  # noqa: N815
    status: str


class DeliveryList(Answer):
    deliveries: list[Delivery]
    pagination: Pagination


class AlertList(Answer):
    alerts: list[dict[str, Any]]
    pagination: Pagination


class ImportReportAnswer(Answer):
    protocol: ProtocolName
    imported: int


def envelope(data: type[BaseModel] | Any, name: str) -> type[BaseModel]:
    """`{"success": true, "data": …, "message"?}` around `data`, as a named model."""
    from pydantic import create_model

    model: type[BaseModel] = create_model(
        name,
        __base__=Answer,
        success=(Literal[True], ...),
        data=(data, ...),
        message=(str | None, None),
    )
    return model


class Reference(ReferenceSummary):
    totals: Any = None
    metadata: dict[str, Any] | None = None
    bindings: list[dict[str, Any]]


SUCCESS = {200: "OK", 201: "Created", 202: "Accepted"}


def answers(
    data: Any, name: str, *errors: int, success: tuple[int, ...] = (200,)
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: the success envelope around `data` (a model named `name`) for
    each `success` status, and the error statuses it sends besides those every route can
    (api/openapi.py adds 400, and 401/403/429 on keyed routes; each gets the error envelope)."""
    model = envelope(data, name)
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": model, "description": SUCCESS[status]} for status in success
    }
    for status in errors:
        documented[status] = {}
    return documented


class Health(Answer):
    """`GET /health`: not an envelope (PayIn's shape); 503 with the same body when the
    database cannot be reached."""

    status: str
    timestamp: str
    version: str
    network: str
    checks: dict[str, Any]
    monitoredChains: dict[str, list[str]]  # noqa: N815


HEALTH_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": Health, "description": "Healthy"},
    503: {"model": Health, "description": "The database cannot be reached"},
}
METRICS_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    401: {"description": "A metrics token is configured and was not presented"},
}


class Received(Answer):
    received: bool
    duplicate: bool


UPSTREAM_ANSWERS = {**answers(Received, "UpstreamWebhookAnswer"), 401: {}}
