"""Request bodies and query parameters. Unknown fields are ignored (docs/api.md, Conventions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (
    AfterValidator,
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
from pool.kit.errors import ValidationFailed
from pool.vocabulary import Protocol, ResolutionOutcome, SignatureScheme

REFERENCE_PATTERN = r"^[A-Za-z0-9._:@-]{1,255}$"
DepositReference = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=REFERENCE_PATTERN)
]
ProtocolName = Protocol


def utc_moment(moment: datetime) -> datetime:
    """A moment without a zone is UTC (docs/api.md, Conventions)."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("must be a moment between the years 1 and 9999 in UTC") from None


AwareMoment = Annotated[datetime, AfterValidator(utc_moment)]


def comma_choices(text: str | None, allowed: tuple[str, ...], field: str) -> tuple[str, ...]:
    """A comma-separated filter (`status=pending,completed`): each one of `allowed`; none
    given is no filter."""
    if text is None:
        return ()
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    if not chosen or set(chosen) - set(allowed):
        message = f"{field} must be a comma-separated list of: {', '.join(allowed)}"
        raise ValidationFailed(message, details=[{"field": field, "message": message}])
    return chosen


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


OperatorNote = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
]


class AttributeRequest(Request):
    deposit_reference: DepositReference = Field(alias="depositReference")
    reason: OperatorNote


class ResolveRequest(Request):
    outcome: ResolutionOutcome
    note: OperatorNote


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


class ReplayBody(Request):
    """An event id range (both included) or a time range (`until` excluded), and why."""

    from_event_id: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, alias="fromEventId"
    )
    to_event_id: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, alias="toEventId"
    )
    since: AwareMoment | None = None
    until: AwareMoment | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
