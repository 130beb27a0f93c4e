"""One error root; each subclass knows its wire type, code and HTTP status (docs/api.md,
Conventions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

# The `addrpool` command's exit statuses (docs/operations.md, Exit statuses).
EXIT_REFUSED = 2  # usage, configuration or input refused; argparse exits 2 as well
EXIT_DATABASE_UNREACHABLE = 3
EXIT_BUG = 70  # sysexits' EX_SOFTWARE: an unexpected error, shown with its traceback


class AddrpoolError(Exception):
    status: ClassVar[int] = 500
    error: ClassVar[str] = "InternalError"
    default_code: ClassVar[str] = "INTERNAL_ERROR"
    # What the `addrpool` command exits with when this stops it.
    exit_status: ClassVar[int] = EXIT_REFUSED

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
        details_count: int | None = None,
        details_by_kind: Mapping[str, int] | None = None,
    ) -> None:
        """`details_count`/`details_by_kind`: how many details there were in all, when `details`
        lists only the first of them (an import's report is bounded whatever its size)."""
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = list(details) if details else None
        self.details_count = details_count
        self.details_by_kind = dict(details_by_kind) if details_by_kind is not None else None

    def envelope(self) -> dict[str, Any]:
        """The error body of docs/api.md; the CLI prints the same with `--json`."""
        body: dict[str, Any] = {
            "success": False,
            "error": self.error,
            "code": self.code,
            "message": self.message,
        }
        if self.details:
            body["details"] = self.details
        if self.details_count is not None:
            body["detailsCount"] = self.details_count
            body["detailsByKind"] = self.details_by_kind or {}
        return body


class ValidationFailed(AddrpoolError):
    status = 400
    error = "ValidationError"
    default_code = "VALIDATION_FAILED"


class TargetRefused(ValidationFailed):
    """A webhook or alert hook URL that may not be sent to (malformed, or not a public address):
    final, where a name that does not resolve now may resolve later."""

    default_code = "INVALID_URL"


class Unauthorized(AddrpoolError):
    status = 401
    error = "Unauthorized"
    default_code = "UNAUTHORIZED"


class Forbidden(AddrpoolError):
    status = 403
    error = "Forbidden"
    default_code = "FORBIDDEN"


class NotFound(AddrpoolError):
    status = 404
    error = "NotFound"
    default_code = "NOT_FOUND"


class Conflict(AddrpoolError):
    status = 409
    error = "Conflict"
    default_code = "CONFLICT"


class DuplicateOrderReference(Conflict):
    """An orderReference that already names an order asked for with other fields; the error
    envelope carries the existing order's id (docs/api.md, Orders)."""

    default_code = "DUPLICATE_ORDER_REFERENCE"

    def __init__(self, reference: str, existing_order_id: str) -> None:
        super().__init__(
            f"orderReference {reference!r} already names order {existing_order_id}, created "
            "with other fields; the same fields again return it"
        )
        self.existing_order_id = existing_order_id

    def envelope(self) -> dict[str, Any]:
        return {**super().envelope(), "existingOrderId": self.existing_order_id}


class PayloadTooLarge(AddrpoolError):
    status = 413
    error = "PayloadTooLarge"
    default_code = "PAYLOAD_TOO_LARGE"


class RateLimited(AddrpoolError):
    """An API key over one of its windows (api.rate_limits); `Retry-After` says when to retry."""

    status = 429
    error = "TooManyRequests"
    default_code = "RATE_LIMITED"


class InsufficientAddresses(AddrpoolError):
    status = 503
    error = "InsufficientAddresses"
    default_code = "INSUFFICIENT_ADDRESSES"

    def __init__(self, protocol: str) -> None:
        super().__init__(f"No available addresses in pool for protocol: {protocol}")
        self.protocol = protocol


class ConfigurationError(AddrpoolError):
    """Bad settings: reported at start-up, never over the API."""

    default_code = "CONFIGURATION_ERROR"


class DatabaseUnreachable(ConfigurationError):
    """The database could not be reached or opened: a command stops before doing anything."""

    default_code = "DATABASE_UNREACHABLE"
    exit_status = EXIT_DATABASE_UNREACHABLE


class DatabaseNetworkMismatch(ConfigurationError):
    """The database belongs to the other network: this process must not use it."""

    default_code = "DATABASE_NETWORK_MISMATCH"

    def __init__(self, *, database: str, belongs_to: str, running: str, told_by: str) -> None:
        super().__init__(
            f"the database at {database} belongs to {belongs_to}{told_by} "
            f"(ADDRPOOL_NETWORK={running} here): run with ADDRPOOL_NETWORK={belongs_to} "
            "or use another database"
        )


class RaceLost(AddrpoolError):
    """A concurrent writer won a unique index; the whole transaction is safe to run again."""

    status = 409
    error = "Conflict"
    default_code = "CONCURRENT_UPDATE"


class LeadershipLost(AddrpoolError):
    """Another watcher leads this chain now: this one writes nothing more for it (invariant 15,
    docs/design.md).

    Raised inside the worker only (the transaction rolls back); never sent over the API.
    """

    status = 409
    error = "Conflict"
    default_code = "LEADERSHIP_LOST"


class UpstreamUnavailable(AddrpoolError):
    """Upstream mode: PayIn did not answer (after retries) or answered with a 5xx."""

    status = 503
    error = "UpstreamUnavailable"
    default_code = "UPSTREAM_UNAVAILABLE"


class UpstreamAddressUnknown(AddrpoolError):
    """Upstream mode: PayIn handed out an address we did not import: never give it out."""

    status = 502
    error = "UpstreamAddressUnknown"
    default_code = "UPSTREAM_ADDRESS_UNKNOWN"


class UpstreamAnswerInvalid(AddrpoolError):
    """Upstream mode: PayIn answered a success that does not describe what was asked (an order
    for another reference, chain, token or amount): nothing is recorded."""

    status = 502
    error = "UpstreamRefused"
    default_code = "UPSTREAM_ANSWER_INVALID"


class UpstreamRefused(AddrpoolError):
    """Upstream mode: PayIn's own 4xx, passed on with its type, code and message."""

    def __init__(self, status: int, error: str, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = status  # type: ignore[misc]
        self.error = error  # type: ignore[misc]


class ChainUnavailable(AddrpoolError):
    """No RPC endpoint of a chain could serve a command that reads it (rescan, a check)."""

    status = 503
    error = "ChainUnavailable"
    default_code = "CHAIN_UNAVAILABLE"
