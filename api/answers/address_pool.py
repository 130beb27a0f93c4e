"""The address pool's answers (api/routes/pool.py)."""

from __future__ import annotations

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from api.answers import Answer, Pagination
from pool.vocabulary import AddressState, Protocol


class PoolSummary(Answer):
    total: int
    available: int
    bound: int
    allocated: int = Field(description="held by pending orders: taken, as bound ones are")
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
    status: AddressState
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


class KeyRefill(Answer):
    """A registered xpub's branch marked for refill (docs/importing.md, Refill from the xpub)."""

    protocol: Protocol
    fingerprint: str
    branch: int
    enabled: bool
    state: str = Field(description="on | off | at maximum")
    nextIndex: int  # noqa: N815
    maxIndex: int  # noqa: N815
    remaining: int
    lowWater: int = Field(description="in force: the key's own or the [refill] default")  # noqa: N815
    batchSize: int  # noqa: N815
    free: int = Field(description="the protocol's free addresses now")
    refilledAt: str | None  # noqa: N815


class KeyRefills(Answer):
    refills: list[KeyRefill]
