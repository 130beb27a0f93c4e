"""Payment links' request bodies (docs/api.md, Payment links); their answers are in
api/answers/payment_links.py."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from api.order_schemas import Url
from api.schemas import AwareMoment, Request
from pool.bindings.metadata import check_metadata
from pool.kit.errors import ValidationFailed
from pool.links.records import LinkAsk, LinkCurrency

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]
Inventory = Annotated[int, Field(ge=1, le=1_000_000_000)]


class LinkCurrencyBody(Request):
    currency: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    chain_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        alias="chainId"
    )


def _amount_is_text(value: Any) -> Any:
    # A JSON number would be rounded by some client on its way here: decimal strings only.
    if not isinstance(value, str):
        raise ValidationFailed(
            'amount must be a decimal string, e.g. "10.5" ("0": the payer enters it)',
            code="INVALID_AMOUNT",
            details=[{"field": "amount", "message": "must be a decimal string"}],
        )
    return value


class LinkRequest(Request):
    title: Title
    description: Description | None = None
    amount: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    currencies: list[LinkCurrencyBody] = Field(max_length=50)
    inventory_total: Inventory | None = Field(default=None, alias="inventoryTotal")
    expires_at: AwareMoment | None = Field(default=None, alias="expiresAt")
    metadata: dict[str, Any] | None = None
    success_url: Url | None = Field(default=None, alias="successUrl")
    cancel_url: Url | None = Field(default=None, alias="cancelUrl")

    _amount = field_validator("amount", mode="before")(_amount_is_text)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_is_safe(cls, value: Any) -> Any:
        return check_metadata(value)

    def ask(self) -> LinkAsk:
        return LinkAsk(
            title=self.title,
            amount=self.amount,
            currencies=[LinkCurrency(c.currency, c.chain_id) for c in self.currencies],
            description=self.description,
            inventory_total=self.inventory_total,
            expires_at=self.expires_at,
            metadata=self.metadata,
            success_url=self.success_url,
            cancel_url=self.cancel_url,
        )


class LinkPatch(Request):
    """Only the fields sent change; null clears description, metadata, expiresAt and
    inventoryTotal (unlimited); the title may not be null."""

    title: Title | None = None
    description: Description | None = None
    metadata: dict[str, Any] | None = None
    expires_at: AwareMoment | None = Field(default=None, alias="expiresAt")
    inventory_total: Inventory | None = Field(default=None, alias="inventoryTotal")

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_is_safe(cls, value: Any) -> Any:
        return check_metadata(value)

    def changes(self) -> dict[str, Any]:
        """By column name: the fields the client sent."""
        sent = self.model_fields_set
        if "title" in sent and self.title is None:
            raise ValidationFailed(
                "title may not be null", details=[{"field": "title", "message": "may not be null"}]
            )
        if not sent:
            raise ValidationFailed(
                "nothing to change: send at least one of title, description, metadata, "
                "expiresAt, inventoryTotal"
            )
        return {name: getattr(self, name) for name in sent}
