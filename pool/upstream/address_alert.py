"""The critical alert for an address PayIn returned that we cannot use, whether for a bind
(pool.upstream.binding) or an order (pool.upstream.orders): funds sent there would reach keys we
do not hold, or be claimed by two orders."""

from __future__ import annotations

import logging
from typing import Any

from pool.alerts.repository import fire_alert
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.vocabulary import UPSTREAM_ADDRESS_UNKNOWN, Protocol

log = logging.getLogger("addrpool.upstream")


async def alert_unusable_address(
    db: Database,
    *,
    protocol: Protocol,
    shown: Any,
    message: str,
    details: dict[str, Any],
    log_extra: dict[str, Any] | None = None,
) -> None:
    """Log `message` at critical (with `log_extra`, by default the details) and fire the alert,
    one per protocol and address, in a transaction of its own."""
    log.critical(message, extra=details if log_extra is None else log_extra)
    async with db.write() as conn:
        await fire_alert(
            conn,
            kind=UPSTREAM_ADDRESS_UNKNOWN,
            subject=f"{UPSTREAM_ADDRESS_UNKNOWN}:{protocol}:{shown}",
            severity="critical",
            value=str(shown),
            details=details,
            now=utc_now(),
        )
