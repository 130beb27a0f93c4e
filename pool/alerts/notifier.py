"""The worker that tells every configured hook about every alert transition, with retries.

Transitions are written with the alert (`pool/alerts/repository.py`); this worker fans each
out to one notification per hook (and the structured log), then sends them: HTTP and command
hooks are retried with exponential backoff for a day, then marked failed and logged as errors
(an alert about failing alert hooks would go to the same failing hooks). A hook whose URL the
target check refuses (`pool.alerts.hooks`) is failed at once: trying again cannot help.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.alerts import actions_repository as silences
from pool.alerts import notifications_repository as repo
from pool.alerts.hooks import HookFailed, HookRefused, message, send
from pool.alerts.notifications_repository import Claimed, Notice
from pool.kit.clock import utc_now
from pool.kit.config import AlertSettings
from pool.kit.db import Database
from pool.kit.loop import run_every
from pool.webhooks.sender import WebhookSender

log = logging.getLogger("addrpool.alerts")
POLL_SECONDS = 0.25
LEASE = timedelta(seconds=330)  # outlasts the longest hook timeout the settings allow (300 s)
CLAIM_LIMIT = 20
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0
RETRY_BUDGET = timedelta(days=1)
MAX_HOOK_TIMEOUT = 300.0  # the longest a hook's settings allow


class AlertNotifier:
    def __init__(self, db: Database, settings: AlertSettings) -> None:
        self.db = db
        self.enabled = settings.enabled
        self.hooks = {hook.name: hook for hook in settings.hooks}
        self.allow_private = settings.hooks_allow_private
        # Each hook's own timeout is passed with its request; this one is never used alone.
        self._sender = WebhookSender(timeout=MAX_HOOK_TIMEOUT)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if self.enabled:
                await run_every(
                    stop,
                    self.run_once,
                    pause=POLL_SECONDS,
                    log=log,
                    failure="alert notification pass failed; trying again",
                )
        finally:
            await self._sender.aclose()

    async def run_once(self) -> int:
        """Dispatch new transitions, lift the silences whose time is over, send what is due;
        returns how many sends were tried."""
        async with self.db.read() as conn:
            if not await repo.has_work(conn, now=utc_now()):
                return 0
        await self._dispatch()
        # After the dispatch: a transition written during a silence is judged silenced before
        # the silence is lifted. The `unsilenced` news it writes goes out on the next pass.
        async with self.db.write() as conn:
            await silences.end_expired_silences(conn, now=utc_now())
        now = utc_now()
        async with self.db.write() as conn:
            claimed = await repo.claim_due(
                conn, now=now, lease_until=now + LEASE, limit=CLAIM_LIMIT
            )
        await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    async def _dispatch(self) -> None:
        async with self.db.write() as conn:
            notices = await repo.undispatched(conn)
            quiet: set[int] = set()
            if notices:
                quiet = await _silenced(conn, notices)
                hooks = list(self.hooks)
                await repo.dispatch(
                    conn, notices=notices, hooks=hooks, now=utc_now(), silenced=quiet
                )
        for notice in notices:
            _log_transition(notice, silenced=notice.transition_id in quiet)

    async def _deliver(self, claimed: Claimed) -> None:
        hook = self.hooks.get(claimed.hook)
        attempts = claimed.attempts + 1
        try:
            if hook is None:
                raise HookFailed(f"hook {claimed.hook!r} is no longer configured")
            body = message(claimed.notice)
            await send(hook, body, self._sender, allow_private=self.allow_private)
        except HookFailed as exc:
            final = hook is None or isinstance(exc, HookRefused)
            await self._failed(claimed, attempts, str(exc), final=final)
            return
        now = utc_now()
        async with self.db.write() as conn:
            await repo.record_outcome(
                conn,
                notification_id=claimed.id,
                status="sent",
                attempts=attempts,
                error=None,
                next_attempt_at=None,
                now=now,
            )

    async def _failed(self, claimed: Claimed, attempts: int, error: str, *, final: bool) -> None:
        now = utc_now()
        retry_at = _next_attempt(claimed.created_at, attempts, now)
        given_up = final or retry_at is None
        async with self.db.write() as conn:
            await repo.record_outcome(
                conn,
                notification_id=claimed.id,
                status="failed" if given_up else "pending",
                attempts=attempts,
                error=error,
                next_attempt_at=retry_at,
                now=now,
            )
        level = logging.ERROR if given_up else logging.WARNING
        log.log(
            level,
            "alert hook gave up" if given_up else "alert hook failed; will retry",
            extra={
                "hook": claimed.hook,
                "subject": claimed.notice.alert["subject"],
                "error": error,
            },
        )


async def _silenced(conn: AsyncConnection, notices: list[Notice]) -> set[int]:
    """The transitions written while their subject was silenced: the hooks hear nothing."""
    until = {subject: end for subject, (end, _by) in (await silences.silences(conn)).items()}
    return {
        n.transition_id
        for n in notices
        if n.alert["subject"] in until and n.at < until[n.alert["subject"]]
    }


def _next_attempt(created_at: datetime, attempts: int, now: datetime) -> datetime | None:
    wait = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1))
    retry_at = now + timedelta(seconds=wait)
    return retry_at if retry_at - created_at <= RETRY_BUDGET else None


# Getting worse is a warning in the log; getting better is news.
_LOGGED = {
    "fired": (logging.WARNING, "alert fired"),
    "escalated": (logging.WARNING, "alert escalated"),
    "deescalated": (logging.INFO, "alert de-escalated"),
    "resolved": (logging.INFO, "alert resolved"),
    "unsilenced": (logging.WARNING, "alert silence ended; still firing"),
}


def _log_transition(notice: Notice, *, silenced: bool = False) -> None:
    """The structured log is a hook too: every transition, once, when it is dispatched.
    A silenced one is still logged (the record stays whole), as news only: an operator
    already knows of it."""
    alert = notice.alert
    level, text = _LOGGED.get(notice.transition, (logging.WARNING, f"alert {notice.transition}"))
    if silenced:
        level, text = logging.INFO, f"{text} (silenced)"
    log.log(
        level,
        text,
        extra={
            "silenced": silenced,
            "alert_id": alert["id"],
            "kind": alert["kind"],
            "subject": alert["subject"],
            "severity": alert["severity"],
            "value": alert["value"],
            "details": alert["details"],
        },
    )
