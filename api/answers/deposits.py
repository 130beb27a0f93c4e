"""The deposits API's answers (api/routes/deposits.py)."""

from __future__ import annotations

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from api.answers import Answer, FreeForm, Pagination
from pool.vocabulary import Protocol


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


class DepositResolution(Answer):
    """An operator's decision on a deposit nobody was credited with (docs/api.md)."""

    outcome: str = Field(description="attributed, refunded or ignored")
    note: str | None
    resolvedBy: str | None  # noqa: N815
    resolvedAt: str | None  # noqa: N815


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
    logIndex: int | None = Field(description="null for a native deposit")  # noqa: N815
    tracePosition: str | None = Field(  # noqa: N815
        default=None, description='a native deposit\'s place in its transaction: "tx", "tx.0.1"'
    )
    blockNumber: int  # noqa: N815
    from_: str = Field(alias="from")
    late: bool
    detectedAt: str  # noqa: N815
    confirmedAt: str | None  # noqa: N815
    completedAt: str | None  # noqa: N815
    resolution: DepositResolution | None = None


class DepositList(Answer):
    deposits: list[Deposit]
    pagination: Pagination
