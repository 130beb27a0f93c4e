"""The words shared by the services, the API, the CLI and the chains: each defined once here.

Each vocabulary is a `Literal` type (what mypy checks) and a tuple of its values (what code
iterates or validates against); single values have a constant, so callers compare against
names rather than fresh string literals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, get_args

Protocol = Literal["evm", "tron"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
EVM: Final = "evm"
TRON: Final = "tron"

# One instance, and one database, serves one network (Dodo's test/live modes).
Network = Literal["testnet", "mainnet"]
NETWORKS: tuple[Network, ...] = get_args(Network)
TESTNET: Final = "testnet"
MAINNET: Final = "mainnet"
# An API key names its network in its first characters.
KEY_PREFIXES: dict[Network, str] = {"testnet": "pk_test_", "mainnet": "pk_live_"}
# What an API key may do; each route requires one (`admin` passes every check).
ApiScope = Literal[
    "deposits:read",
    "deposits:write",
    "pool:read",
    "pool:write",
    "webhooks:read",
    "webhooks:write",
    "orders:read",
    "orders:write",
    "console:read",
    "console:write",
    "admin",
]
API_SCOPES: tuple[ApiScope, ...] = get_args(ApiScope)
# The operator console (`/ui`): `console:read` signs in and reads, `console:write` acts.
CONSOLE_READ: Final = "console:read"
CONSOLE_WRITE: Final = "console:write"

# An address's stored status: `allocated` is held by one pending order.
AddressStatus = Literal["available", "bound", "allocated", "archived", "importing"]
ADDRESS_STATUSES: tuple[AddressStatus, ...] = get_args(AddressStatus)
AVAILABLE: Final = "available"
BOUND: Final = "bound"
ALLOCATED: Final = "allocated"
ARCHIVED: Final = "archived"
# Written by a SQLite import that has not finished: not (yet) the pool's. Nothing claims,
# counts, lists or finds such a row; the watcher watches it only once its batch is committed
# (docs/importing.md, "While an import runs").
IMPORTING: Final = "importing"

# An import batch's status. `importing`: its rows are being written and are not the pool's; a
# batch that fails is deleted with its rows. `committed`: the import succeeded and its rows ARE
# the pool's, though some may still be `importing` until they are made available (the batch
# row is the truth: an interrupted hand-over is finished by the next start or import).
# `done`: every row handed over (PostgreSQL writes an import in one transaction: `done` at once).
ImportBatchStatus = Literal["importing", "committed", "done"]
IMPORT_BATCH_STATUSES: tuple[ImportBatchStatus, ...] = get_args(ImportBatchStatus)
BATCH_IMPORTING: Final = "importing"
BATCH_COMMITTED: Final = "committed"
BATCH_DONE: Final = "done"
# An address as the API, the CLI and the metrics show it: "cooling_down" is an available one
# whose cooldown is still ahead.
AddressState = Literal["available", "bound", "allocated", "cooling_down", "archived"]
ADDRESS_STATES: tuple[AddressState, ...] = get_args(AddressState)
COOLING_DOWN: Final = "cooling_down"

# A deposit's status: `pending` until deep enough, then `confirmed`; `completed` once its
# confirmation was delivered; `reverted` when a reorg took it away; `dust` below the minimum.
DepositStatus = Literal["pending", "confirmed", "completed", "reverted", "dust"]
DEPOSIT_STATUSES: tuple[DepositStatus, ...] = get_args(DepositStatus)
PENDING: Final = "pending"
CONFIRMED: Final = "confirmed"
COMPLETED: Final = "completed"
REVERTED: Final = "reverted"
DUST: Final = "dust"
# Money the receiver has been told it has.
CREDITED: tuple[DepositStatus, ...] = (CONFIRMED, COMPLETED)
# On the canonical chain as far as the watcher knows.
ON_CHAIN: tuple[DepositStatus, ...] = (PENDING, CONFIRMED, COMPLETED, DUST)
# The token contract stored with a deposit of the chain's own coin (no contract moved it);
# shown to clients as null (docs/api.md, Deposits).
NATIVE_CONTRACT: Final = "native"

# An order's status: `pending` until exactly one terminal status (invariant 14, docs/design.md).
OrderStatus = Literal["pending", "completed", "expired", "cancelled"]
ORDER_STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)
# `pending` and `completed` are the deposit statuses' PENDING and COMPLETED (the same words).
EXPIRED: Final = "expired"
CANCELLED: Final = "cancelled"
ORDER_TERMINAL: tuple[OrderStatus, ...] = ("completed", "expired", "cancelled")
# What a deposit to an order's address is to that order: `payment` counts towards the amount
# (its token, its chain, mined within the order's time); `late` arrived while the address cooled
# down after the order; `mismatch` is another token or chain during the order's life.
OrderPaymentRole = Literal["payment", "late", "mismatch"]
ORDER_PAYMENT_ROLES: tuple[OrderPaymentRole, ...] = get_args(OrderPaymentRole)
PAYMENT: Final = "payment"
LATE_PAYMENT: Final = "late"
MISMATCHED_PAYMENT: Final = "mismatch"

# An operator's decision on a deposit nobody was credited with, or an order's late or
# mismatched transfer (pool/deposits/resolution.py): `attributed` to a reference (it is then
# announced as a bound deposit), or `refunded` / `ignored` (no credit, nothing sent).
DepositResolution = Literal["attributed", "refunded", "ignored"]
DEPOSIT_RESOLUTIONS: tuple[DepositResolution, ...] = get_args(DepositResolution)
ATTRIBUTED: Final = "attributed"
ResolutionOutcome = Literal["refunded", "ignored"]
RESOLUTION_OUTCOMES: tuple[ResolutionOutcome, ...] = get_args(ResolutionOutcome)

# A payment link's stored status: a `draft` is not public yet, a `published` link's checkout
# takes orders, an `archived` one no more (for good). Shown besides: `expired` (a published link
# past its expiresAt) and `sold_out` (its inventory all reserved or sold).
LinkStatus = Literal["draft", "published", "archived"]
LINK_STATUSES: tuple[LinkStatus, ...] = get_args(LinkStatus)
DRAFT: Final = "draft"
PUBLISHED: Final = "published"
LinkState = Literal["draft", "published", "archived", "expired", "sold_out"]
LINK_STATES: tuple[LinkState, ...] = get_args(LinkState)
SOLD_OUT: Final = "sold_out"

# A webhook delivery's status: `pending` until it succeeds, or fails for good, or is
# cancelled with its endpoint.
DeliveryStatus = Literal["pending", "succeeded", "failed", "cancelled"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)
DELIVERY_PENDING: Final = "pending"
DELIVERY_SUCCEEDED: Final = "succeeded"
DELIVERY_FAILED: Final = "failed"
DELIVERY_CANCELLED: Final = "cancelled"

# How a webhook body is signed: over the body alone, or over a timestamp and the body.
SignatureScheme = Literal["body", "timestamped"]
SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = get_args(SignatureScheme)
TIMESTAMPED: Final = "timestamped"

# The webhook event types, in the order of the API's event table.
EventType = Literal[
    "deposit.pending",
    "deposit.confirmed",
    "deposit.reverted",
    "deposit.address_bound",
    "deposit.address_unbound",
    "alert.address_pool_low",
    "order.created",
    "order.completed",
    "order.expired",
    "order.cancelled",
    "order.paid_late",
    "order.payment_mismatch",
    "order.reverted",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
DEPOSIT_PENDING: Final = "deposit.pending"
DEPOSIT_CONFIRMED: Final = "deposit.confirmed"
DEPOSIT_REVERTED: Final = "deposit.reverted"
ADDRESS_BOUND: Final = "deposit.address_bound"
ADDRESS_UNBOUND: Final = "deposit.address_unbound"
POOL_LOW_EVENT: Final = "alert.address_pool_low"
ORDER_CREATED: Final = "order.created"
ORDER_COMPLETED: Final = "order.completed"
ORDER_EXPIRED: Final = "order.expired"
ORDER_CANCELLED: Final = "order.cancelled"
ORDER_PAID_LATE: Final = "order.paid_late"
ORDER_PAYMENT_MISMATCH: Final = "order.payment_mismatch"
ORDER_REVERTED: Final = "order.reverted"
# Sent on demand to one endpoint whatever its subscriptions; not one of EVENT_TYPES.
TEST_EVENT: Final = "test.event"

# An alert episode is open ("firing") until resolved.
AlertState = Literal["firing", "resolved"]
ALERT_STATES: tuple[AlertState, ...] = get_args(AlertState)
FIRING: Final = "firing"
RESOLVED: Final = "resolved"

# What an alert is about; its subject is `<kind>:<what>` (e.g. `pool_low:evm`).
AlertKind = Literal[
    "pool_low",
    "pool_exhaustion",
    "watcher_lagging",
    "watcher_stalled",
    "webhook_failures",
    "webhook_endpoint_failing",
    "rpc_all_down",
    "deep_reorg",
    "upstream_discrepancy",
    "upstream_address_unknown",
    "webhook_delivery_failed",
    "confirmed_deposit_reverted",
    "unattributed_deposit",
    "reconciliation_discrepancy",
    "order_payment_reverted",
]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
POOL_LOW: Final = "pool_low"
POOL_EXHAUSTION: Final = "pool_exhaustion"
WATCHER_LAGGING: Final = "watcher_lagging"
WATCHER_STALLED: Final = "watcher_stalled"
WEBHOOK_FAILURES: Final = "webhook_failures"
WEBHOOK_ENDPOINT_FAILING: Final = "webhook_endpoint_failing"
RPC_ALL_DOWN: Final = "rpc_all_down"
DEEP_REORG: Final = "deep_reorg"
UPSTREAM_DISCREPANCY: Final = "upstream_discrepancy"
UPSTREAM_ADDRESS_UNKNOWN: Final = "upstream_address_unknown"
WEBHOOK_DELIVERY_FAILED: Final = "webhook_delivery_failed"
CONFIRMED_DEPOSIT_REVERTED: Final = "confirmed_deposit_reverted"
UNATTRIBUTED_DEPOSIT: Final = "unattributed_deposit"
RECONCILIATION_DISCREPANCY: Final = "reconciliation_discrepancy"
ORDER_PAYMENT_REVERTED: Final = "order_payment_reverted"


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """An address as stored: canonical text (EIP-55 / base58 `T…`) and its 20 bytes in hex."""

    protocol: Protocol
    text: str
    hex20: str


# chains/ provides the codecs; pool needs only "text in, ParsedAddress out, or ValidationFailed".
AddressParser = Callable[[str], ParsedAddress]
