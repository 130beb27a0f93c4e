"""The delivery worker: sends each pending delivery, signed, and retries until it lands.

Deliveries are claimed from the database (leased; `SKIP LOCKED` on PostgreSQL), so any number of
workers share them and a restart loses nothing. Each endpoint has its own small concurrency
limit and every request a timeout: a slow or dead endpoint holds up only its own deliveries.
Retries back off exponentially from 1 s (capped at an hour per wait) on timeouts, connection
errors, 5xx, 408 and 429 (whose `Retry-After` is honoured) for about three days; any other 4xx
is final, and so is a target the pre-send check refuses (a URL that is not valid, a name that now
resolves to a private address): sending again cannot help. A delivery that gives up is `failed`
and raises an alert record.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from pool import __version__
from pool.alerts.repository import fire_alert
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.db_failures import log_failure
from pool.kit.errors import AddrpoolError, TargetRefused
from pool.kit.loop import run_every
from pool.kit.secret_box import OpenedSecrets, secret_box
from pool.vocabulary import (
    DELIVERY_FAILED,
    DELIVERY_SUCCEEDED,
    DEPOSIT_CONFIRMED,
    TIMESTAMPED,
    WEBHOOK_DELIVERY_FAILED,
)
from pool.webhooks import claims_repository as claims
from pool.webhooks import deliveries_repository as repo
from pool.webhooks.body import body_bytes
from pool.webhooks.delivery_records import AttemptRecorder
from pool.webhooks.outcome import Tried, outcome
from pool.webhooks.recovery import Recovery
from pool.webhooks.sender import SEND_ERRORS, Answer, WebhookSender
from pool.webhooks.signatures import sign_body, sign_timestamped
from pool.webhooks.urls import Resolver, parse_webhook_url

log = logging.getLogger("addrpool.webhooks")
REQUEST_TIMEOUT = 10.0
LEASE = timedelta(seconds=60)  # well beyond REQUEST_TIMEOUT: one attempt at a time
# A claim with at least its request timeout plus this margin of lease left is sent without
# renewing it first: the request ends long before the lease does, so nobody else can take it.
RENEW_MARGIN = timedelta(seconds=20)
UNRENEWED = timedelta(seconds=REQUEST_TIMEOUT) + RENEW_MARGIN  # with the default timeout
PER_ENDPOINT = 4
# Claims per endpoint, sending or next in line. A queued claim waits at most
# HELD_PER_ENDPOINT / PER_ENDPOINT request timeouts (40 s): within its lease.
HELD_PER_ENDPOINT = 4 * PER_ENDPOINT
REFILL_AT = HELD_PER_ENDPOINT // 2  # claim more once this few are left: in batches, no gaps
IDLE_SECONDS = 0.5


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self._secrets: OpenedSecrets | None = None
        self._sender = WebhookSender(timeout=request_timeout, ssl_context=ssl_context)
        self._unrenewed = timedelta(seconds=request_timeout) + RENEW_MARGIN
        self._resolver = resolver or Resolver()
        self._recorder = AttemptRecorder(db, _after_written, has_consequences=_has_consequences)
        self._recovery = Recovery(db, lease=LEASE)
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: dict[str, int] = {}
        self._busy: set[str] = set()  # endpoints whose last claim filled all their room
        self._discovered_at = -IDLE_SECONDS  # when endpoints_due was last asked (monotonic)
        self._room = asyncio.Event()  # an endpoint fell to REFILL_AT claims, or stop was set
        self._stopping = False  # queued claims are handed back, not sent

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until stopped; after `stop` no new claim and no new request: requests
        under way finish (within the request timeout), claims still queued are handed back."""
        waker = asyncio.create_task(self._wake_on(stop))
        try:
            # After a round that claimed nothing, wait until an endpoint has room again (not a
            # fixed sleep: a busy endpoint is refilled as soon as it runs low) or, for new
            # deliveries, at most IDLE_SECONDS; `_room` is cleared before each round, so room
            # made while claiming wakes the next wait.
            await run_every(
                stop,
                self.run_once,
                pause=lambda sent: 0 if sent else IDLE_SECONDS,
                wake=self._room,
                log=log,
                failure="delivery loop failed; will retry",
            )
        finally:
            waker.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._sender.aclose()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        self._room.set()

    async def run_once(self) -> int:
        """Claim what is due, per endpoint up to its room, and start sending; returns how many.

        Each endpoint holds at most HELD_PER_ENDPOINT claims (sending or queued), so a lease
        never runs out while a delivery waits its turn, and a dead endpoint's backlog stays in
        the database instead of in memory.
        """
        now = utc_now()
        # PostgreSQL: the claim is one statement, atomic by itself; no transaction around it.
        claiming = self.db.write() if self.db.is_sqlite else self.db.autocommit()
        async with claiming as conn:
            rooms = self._rooms(await self._endpoints_to_claim(conn, now))
            claimed = await claims.claim_for_endpoints(
                conn, rooms=rooms, now=now, lease_until=now + LEASE
            )
        self._note_claims(rooms, claimed)
        for item in claimed:
            task = asyncio.create_task(self._deliver_limited(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def _endpoints_to_claim(self, conn: AsyncConnection, now: datetime) -> list[str]:
        """Endpoints with a backlog (their last claim filled their room) are refilled directly;
        which others have something due is asked at most every IDLE_SECONDS while some are
        busy: that question reads every due delivery, a backlog of thousands each time."""
        if self._busy and time.monotonic() - self._discovered_at < IDLE_SECONDS:
            return sorted(self._busy)
        self._discovered_at = time.monotonic()
        return await claims.endpoints_due(conn, now=now)

    def _rooms(self, endpoint_ids: list[str]) -> dict[str, int]:
        rooms = {e: HELD_PER_ENDPOINT - self._held.get(e, 0) for e in endpoint_ids}
        return {endpoint_id: room for endpoint_id, room in rooms.items() if room > 0}

    def _note_claims(self, rooms: dict[str, int], claimed: list[claims.Claimed]) -> None:
        got = Counter(item.endpoint_id for item in claimed)
        for endpoint_id, room in rooms.items():
            self._held[endpoint_id] = self._held.get(endpoint_id, 0) + got[endpoint_id]
            if got[endpoint_id] == room:
                self._busy.add(endpoint_id)  # probably more where these came from
            else:
                self._busy.discard(endpoint_id)

    async def drain(self) -> None:
        """Wait for every send started so far (tests and benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver_limited(self, claimed: claims.Claimed) -> None:
        try:
            tried = await self._send_limited(claimed)
        except Exception:
            # The lease runs out and another attempt follows: nothing is lost.
            log.exception("delivery attempt crashed", extra={"delivery": claimed.delivery_id})
            return
        finally:
            self._release(claimed.endpoint_id)
        if tried is None:
            return
        try:
            await self._record(claimed, tried)
        except Exception as exc:
            extra = {"delivery": claimed.delivery_id}
            log_failure(log, "delivery attempt not recorded", exc, extra)

    async def _send_limited(self, claimed: claims.Claimed) -> Tried | None:
        """The attempt, within the endpoint's limit on concurrent requests; None if the claim
        was lost while it queued."""
        limit = self._limits.setdefault(claimed.endpoint_id, asyncio.Semaphore(PER_ENDPOINT))
        async with limit:
            if self._stopping:
                await self._hand_back(claimed)
                return None
            if not await self._still_ours(claimed):
                return None
            return await self._attempt(claimed)

    async def _hand_back(self, claimed: claims.Claimed) -> None:
        """Stopping: a claim not yet sent is released for the next worker at once, instead of
        being sent behind a slow endpoint's requests (stop would wait for them) or left to its
        lease (a minute's delay)."""
        if claimed.lease_until is None:
            return
        async with self.db.write() as conn:
            await claims.renew_lease(
                conn,
                delivery_id=claimed.delivery_id,
                held_until=claimed.lease_until,
                new_until=utc_now(),
            )

    def _release(self, endpoint_id: str) -> None:
        """A claim is held until its request is over (not until it is recorded: the lease
        covers that), so recording never keeps an endpoint from its next claims."""
        self._held[endpoint_id] -= 1
        if self._held[endpoint_id] <= REFILL_AT:
            self._room.set()

    async def _still_ours(self, claimed: claims.Claimed) -> bool:
        """Renew the lease before sending if much of it went by while this delivery queued; if
        it ran out and another worker took it, skip: one attempt is never made twice at the
        same time. A fresh claim needs no renewal (RENEW_MARGIN)."""
        if claimed.lease_until is None:
            return True
        now = utc_now()
        if claimed.lease_until - now >= self._unrenewed:
            return True
        async with self.db.write() as conn:
            return await claims.renew_lease(
                conn,
                delivery_id=claimed.delivery_id,
                held_until=claimed.lease_until,
                new_until=now + LEASE,
            )

    async def _record(self, claimed: claims.Claimed, tried: Tried) -> None:
        status, next_at = outcome(claimed, tried)
        attempt = tried.attempt
        await self._recorder.record(repo.Finished(claimed, attempt, status, next_at))
        await self._recovery.after_attempt(claimed.endpoint_id, status)
        log.info(
            "webhook attempt",
            extra={
                "delivery": claimed.delivery_id,
                "event": claimed.event_id,
                "endpoint": claimed.endpoint_id,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "outcome": status,
            },
        )

    async def _attempt(self, claimed: claims.Claimed) -> Tried:
        started = time.monotonic()
        attempted_at = utc_now()
        try:
            answer = await self._send(claimed)
        except TargetRefused as exc:
            error = f"{exc.code}: {exc.message}"[:500]
            attempt = repo.Attempt(attempted_at, None, _ms_since(started), error, None)
            return Tried(attempt, refused=True)  # checked before any request was made
        except (*SEND_ERRORS, AddrpoolError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            return Tried(repo.Attempt(attempted_at, None, _ms_since(started), error, None))
        attempt = repo.Attempt(
            attempted_at, answer.status_code, _ms_since(started), None, answer.body
        )
        return Tried(attempt, answer.retry_after)

    async def _send(self, claimed: claims.Claimed) -> Answer:
        allow = self.settings.webhook_allow_private
        target = parse_webhook_url(claimed.url, allow_private=allow)
        address = await self._resolver.resolve(target, allow_private=allow)
        body = body_bytes(
            {
                "id": claimed.event_id,
                "type": claimed.event_type,
                "createdAt": isoformat_z(claimed.event_created_at),
                "data": claimed.event_data,
            }
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"addrpool/{__version__}",
            "X-PayIn-Signature": self._signature(claimed, body),
            "X-PayIn-Event-Id": claimed.event_id,
            "X-PayIn-Event-Type": claimed.event_type,
            "X-PayIn-Delivery-Id": claimed.delivery_id,
        }
        return await self._sender.post(target, address, body, headers)

    def _signature(self, claimed: claims.Claimed, body: bytes) -> str:
        secrets = self._secrets or OpenedSecrets(secret_box(self.settings))
        self._secrets = secrets
        secret = secrets.open(claimed.secret_encrypted)
        if claimed.signature_scheme != TIMESTAMPED:
            return sign_body(secret, body)
        keys = [secret]
        previous = claimed.previous_secret_encrypted
        expires = claimed.previous_secret_expires_at
        if previous is not None and expires is not None and expires > utc_now():
            keys.append(secrets.open(previous))  # both v1= during a rotation
        return sign_timestamped(keys, body, int(time.time()))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _has_consequences(finished: repo.Finished) -> bool:
    """Whether recording it also writes something else (a completed deposit, an alert), which
    must commit together with it."""
    if finished.status == DELIVERY_FAILED:
        return True
    return (
        finished.status == DELIVERY_SUCCEEDED and finished.claimed.event_type == DEPOSIT_CONFIRMED
    )


async def _after_written(conn: AsyncConnection, written: list[repo.Finished]) -> None:
    """In the transaction that recorded them: complete deposits, raise alerts. Events in
    ascending order, so two workers locking the same events cannot deadlock."""
    for finished in sorted(written, key=lambda f: f.claimed.event_seq):
        if finished.status == DELIVERY_SUCCEEDED:
            await _maybe_complete_deposit(conn, finished)
        elif finished.status == DELIVERY_FAILED:
            await _alert_failed(conn, finished.claimed, finished.attempt)


async def _maybe_complete_deposit(conn: AsyncConnection, finished: repo.Finished) -> None:
    """`completed` once every delivery of the deposit's `deposit.confirmed` succeeded."""
    claimed = finished.claimed
    deposit_id = claimed.event_data.get("depositId")
    if claimed.event_type != DEPOSIT_CONFIRMED or not deposit_id:
        return
    if await repo.unfinished_deliveries(conn, event_seq=claimed.event_seq) == 0:
        now = finished.attempt.attempted_at
        await repo.complete_deposit(conn, deposit_id=deposit_id, now=now)


async def _alert_failed(
    conn: AsyncConnection, claimed: claims.Claimed, attempt: repo.Attempt
) -> None:
    await fire_alert(
        conn,
        kind=WEBHOOK_DELIVERY_FAILED,
        subject=f"{WEBHOOK_DELIVERY_FAILED}:{claimed.delivery_id}",
        severity="warning",
        value=str(attempt.status_code or attempt.error),
        details={
            "deliveryId": claimed.delivery_id,
            "eventId": claimed.event_id,
            "endpointId": claimed.endpoint_id,
            "attempts": claimed.attempts + 1,
        },
        now=attempt.attempted_at,
    )
