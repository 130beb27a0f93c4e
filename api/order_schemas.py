"""`POST /api/v1/orders`'s request body (docs/api.md, Orders); its answers are in
api/answers/orders.py."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from api.schemas import DepositReference, Request
from pool.bindings.metadata import check_metadata
from pool.kit.errors import ValidationFailed

# A week: far above any max_total_minutes an operator sets; the real bound is checked with it.
MAX_MINUTES = 7 * 24 * 60
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class OrderRequest(Request):
    order_reference: DepositReference = Field(alias="orderReference")
    amount: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    currency: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    chain_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        alias="chainId"
    )
    metadata: dict[str, Any] | None = None
    success_url: Url | None = Field(default=None, alias="successUrl")
    cancel_url: Url | None = Field(default=None, alias="cancelUrl")
    payment_window_minutes: int | None = Field(
        default=None, alias="paymentWindowMinutes", ge=1, le=MAX_MINUTES
    )
    grace_period_minutes: int | None = Field(
        default=None, alias="gracePeriodMinutes", ge=0, le=MAX_MINUTES
    )
    # PayIn's other spelling of the same field.
    grace_minutes: int | None = Field(default=None, alias="graceMinutes", ge=0, le=MAX_MINUTES)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_text(cls, value: Any) -> Any:
        # A JSON number would be rounded by some client on its way here: decimal strings only.
        # ValidationFailed is no ValueError: pydantic lets it through to the error handler.
        if not isinstance(value, str):
            raise ValidationFailed(
                'amount must be a decimal string, e.g. "10.5"',
                code="INVALID_AMOUNT",
                details=[{"field": "amount", "message": "must be a decimal string"}],
            )
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_is_safe(cls, value: Any) -> Any:
        return check_metadata(value)

    @model_validator(mode="after")
    def _one_grace(self) -> OrderRequest:
        both = (self.grace_period_minutes, self.grace_minutes)
        if None not in both and both[0] != both[1]:
            raise ValueError("gracePeriodMinutes and graceMinutes differ; send one of them")
        return self

    @property
    def grace(self) -> int | None:
        if self.grace_period_minutes is not None:
            return self.grace_period_minutes
        return self.grace_minutes
