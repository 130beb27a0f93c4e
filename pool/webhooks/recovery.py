"""An endpoint that answers again gets its backlog at once.

A receiver that was down leaves its deliveries waiting out backoffs of up to an hour each; once
it answers again they would trickle in over that hour, the payments behind them credited late
and the endpoint's failing alert firing all the while. So when a delivery to an endpoint
succeeds, the endpoint's deliveries still waiting out a backoff are made due now. They are then
claimed like any other, within the endpoint's own limits, so a recovered receiver is not
flooded.

Which successes look: one to an endpoint this worker saw fail since it last looked, at once;
any other at most once a minute per endpoint, since another worker may have seen the failures.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.db_failures import log_failure
from pool.vocabulary import DELIVERY_SUCCEEDED
from pool.webhooks import recovery_repository as repo

log = logging.getLogger("addrpool.webhooks")
LOOK_EVERY_SECONDS = 60.0


class Recovery:
    """Per worker: which endpoints failed lately, and when each was last looked at."""

    def __init__(self, db: Database, *, lease: timedelta) -> None:
        self.db = db
        # Due later than this is a backoff, never a lease (which ends within `lease` of now);
        # twice the lease leaves room for workers' clocks that disagree.
        self._beyond_any_lease = 2 * lease
        self._failed: set[str] = set()
        self._looked_at: dict[str, float] = {}

    async def after_attempt(self, endpoint_id: str, status: str) -> int:
        """Note an attempt's outcome; after a success, make the endpoint's backlog due if it
        may have one. How many deliveries were made due."""
        if status != DELIVERY_SUCCEEDED:
            self._failed.add(endpoint_id)
            return 0
        if not self._may_have_backlog(endpoint_id):
            return 0
        self._failed.discard(endpoint_id)
        self._looked_at[endpoint_id] = time.monotonic()
        now = utc_now()
        try:
            async with self.db.write() as conn:
                made_due = await repo.make_backlog_due(
                    conn,
                    endpoint_id=endpoint_id,
                    now=now,
                    waiting_past=now + self._beyond_any_lease,
                )
        except Exception as exc:  # the backlog then waits out its backoffs: nothing is lost
            log_failure(log, "endpoint backlog not made due", exc, {"endpoint": endpoint_id})
            self._failed.add(endpoint_id)  # try again at its next success
            return 0
        if made_due:
            log.info(
                "endpoint answers again: its backlog is due now",
                extra={"endpoint": endpoint_id, "deliveries": made_due},
            )
        return made_due

    def _may_have_backlog(self, endpoint_id: str) -> bool:
        if endpoint_id in self._failed:
            return True
        looked_at = self._looked_at.get(endpoint_id)
        return looked_at is None or time.monotonic() - looked_at >= LOOK_EVERY_SECONDS
