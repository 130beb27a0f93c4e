"""The delivery worker: sends each pending delivery, signed, and retries until it lands.

Deliveries are claimed from the database (leased; `SKIP LOCKED` on PostgreSQL), so any number of
workers share them and a restart loses nothing. Each endpoint has its own small concurrency
limit and every request a timeout: a slow or dead endpoint holds up only its own deliveries.
Retries back off exponentially from 1 s (capped at an hour per wait) on timeouts, connection
errors, 5xx, 408 and 429 (whose `Retry-After` is honoured) for about three days; any other 4xx
is final. A delivery that gives up is `failed` and raises an alert record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from pool import __version__
from pool.clock import isoformat_z, utc_now
from pool.config import Settings
from pool.db import Database
from pool.errors import AddrpoolError
from pool.repository import deliveries as repo
from pool.repository.alerts import fire_alert
from pool.secret_box import SecretBox, secret_box
from pool.signatures import sign_body, sign_timestamped
from pool.webhook_body import body_bytes
from pool.webhook_urls import parse_webhook_url, resolve_target

log = logging.getLogger("addrpool.webhooks")
REQUEST_TIMEOUT = 10.0
LEASE = timedelta(seconds=60)  # well beyond REQUEST_TIMEOUT: one attempt at a time
FIRST_RETRY = 1.0
MAX_WAIT = 3600.0
RETRY_BUDGET = timedelta(days=3)
PER_ENDPOINT = 4
HELD_PER_ENDPOINT = 2 * PER_ENDPOINT  # claims per endpoint: sending, or next in line
IDLE_SECONDS = 0.5
RETRYABLE = {408, 429}
BODY_KEPT = 1024


class DeliveryWorker:
    def __init__(
        self, db: Database, settings: Settings, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self._box: SecretBox | None = None
        self._http = http or httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT, follow_redirects=False, trust_env=False
        )
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until stopped; no new claim after `stop`, running sends finish."""
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("delivery loop failed; will retry")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=IDLE_SECONDS)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    async def run_once(self) -> int:
        """Claim what is due, per endpoint up to its room, and start sending; returns how many.

        Each endpoint holds at most HELD_PER_ENDPOINT claims (sending or queued), so a lease
        never runs out while a delivery waits its turn, and a dead endpoint's backlog stays in
        the database instead of in memory.
        """
        now = utc_now()
        claimed: list[repo.Claimed] = []
        async with self.db.write() as conn:
            for endpoint_id in await repo.endpoints_due(conn, now=now):
                room = HELD_PER_ENDPOINT - self._held.get(endpoint_id, 0)
                if room > 0:
                    claimed += await repo.claim_due(
                        conn, endpoint_id=endpoint_id, now=now, lease_until=now + LEASE, limit=room
                    )
        for item in claimed:
            self._held[item.endpoint_id] = self._held.get(item.endpoint_id, 0) + 1
            task = asyncio.create_task(self._deliver_limited(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def drain(self) -> None:
        """Wait for every send started so far (tests and benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver_limited(self, claimed: repo.Claimed) -> None:
        limit = self._limits.setdefault(claimed.endpoint_id, asyncio.Semaphore(PER_ENDPOINT))
        try:
            async with limit:
                if await self._still_ours(claimed):
                    await self.deliver(claimed)
        except Exception:
            # The lease runs out and another attempt follows: nothing is lost.
            log.exception("delivery attempt crashed", extra={"delivery": claimed.delivery_id})
        finally:
            self._held[claimed.endpoint_id] -= 1

    async def _still_ours(self, claimed: repo.Claimed) -> bool:
        """Renew the lease just before sending; if it ran out while this delivery queued and
        another worker took it, skip: one attempt is never made twice at the same time."""
        if claimed.lease_until is None:
            return True
        async with self.db.write() as conn:
            return await repo.renew_lease(
                conn,
                delivery_id=claimed.delivery_id,
                held_until=claimed.lease_until,
                new_until=utc_now() + LEASE,
            )

    async def deliver(self, claimed: repo.Claimed) -> None:
        attempt, retry_after = await self._attempt(claimed)
        status, next_at = _outcome(claimed, attempt, retry_after)
        async with self.db.write() as conn:
            written = await repo.record_attempt(
                conn, claimed=claimed, attempt=attempt, status=status, next_attempt_at=next_at
            )
            if written and status == "succeeded":
                await self._maybe_complete_deposit(conn, claimed, attempt.attempted_at)
            if written and status == "failed":
                await _alert_failed(conn, claimed, attempt)
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

    async def _attempt(self, claimed: repo.Claimed) -> tuple[repo.Attempt, str | None]:
        """The attempt as recorded, and the answer's Retry-After header if any."""
        started = time.monotonic()
        attempted_at = utc_now()
        try:
            response = await self._send(claimed)
        except (httpx.HTTPError, AddrpoolError, OSError) as exc:
            latency = int((time.monotonic() - started) * 1000)
            error = f"{type(exc).__name__}: {exc}"[:500]
            return repo.Attempt(attempted_at, None, latency, error, None), None
        latency = int((time.monotonic() - started) * 1000)
        text = response.text[:BODY_KEPT]
        attempt = repo.Attempt(attempted_at, response.status_code, latency, None, text)
        return attempt, response.headers.get("retry-after")

    async def _send(self, claimed: repo.Claimed) -> httpx.Response:
        allow = self.settings.webhook_allow_private
        target = parse_webhook_url(claimed.url, allow_private=allow)
        address = await resolve_target(target, allow_private=allow)
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
            "Host": _host_header(target.host, target.port, target.scheme),
        }
        # Connect to the address just checked, not to a fresh DNS answer (SSRF: no rebinding);
        # TLS still names and verifies the host.
        pinned = httpx.URL(claimed.url).copy_with(host=address)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        return await self._http.post(pinned, content=body, headers=headers, extensions=extensions)

    def _signature(self, claimed: repo.Claimed, body: bytes) -> str:
        box = self._box or secret_box(self.settings)
        self._box = box
        secret = box.open(claimed.secret_encrypted).encode()
        if claimed.signature_scheme != "timestamped":
            return sign_body(secret, body)
        secrets = [secret]
        previous = claimed.previous_secret_encrypted
        expires = claimed.previous_secret_expires_at
        if previous is not None and expires is not None and expires > utc_now():
            secrets.append(box.open(previous).encode())  # both v1= during a rotation
        return sign_timestamped(secrets, body, int(time.time()))

    async def _maybe_complete_deposit(
        self, conn: AsyncConnection, claimed: repo.Claimed, now: datetime
    ) -> None:
        """`completed` once every delivery of the deposit's `deposit.confirmed` succeeded."""
        deposit_id = claimed.event_data.get("depositId")
        if claimed.event_type != "deposit.confirmed" or not deposit_id:
            return
        if await repo.unfinished_deliveries(conn, event_seq=claimed.event_seq) == 0:
            await repo.complete_deposit(conn, deposit_id=deposit_id, now=now)


def _outcome(
    claimed: repo.Claimed, attempt: repo.Attempt, retry_after: str | None
) -> tuple[str, datetime | None]:
    """(new status, next attempt): succeeded, pending again, or failed for good."""
    code = attempt.status_code
    if code is not None and 200 <= code < 300:
        return "succeeded", None
    if code is not None and code < 500 and code not in RETRYABLE:
        return "failed", None  # the receiver refused it: retrying cannot help
    wait = max(_backoff(claimed.attempts + 1), _retry_after_seconds(retry_after))
    next_at = attempt.attempted_at + timedelta(seconds=wait)
    if next_at - claimed.retry_from > RETRY_BUDGET:
        return "failed", None
    return "pending", next_at


def _backoff(attempt: int) -> float:
    """1 s, 2 s, 4 s … capped at an hour, with ±10% jitter so retries do not march in step."""
    base: float = min(MAX_WAIT, FIRST_RETRY * 2.0 ** (attempt - 1))
    return base * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security


def _retry_after_seconds(header: str | None) -> float:
    if not header:
        return 0.0
    if header.strip().isdigit():
        return min(MAX_WAIT, float(header.strip()))
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return 0.0
    return float(max(0.0, min(MAX_WAIT, (moment - utc_now()).total_seconds())))


def _host_header(host: str, port: int, scheme: str) -> str:
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


async def _alert_failed(
    conn: AsyncConnection, claimed: repo.Claimed, attempt: repo.Attempt
) -> None:
    await fire_alert(
        conn,
        kind="webhook_delivery_failed",
        subject=f"webhook_delivery_failed:{claimed.delivery_id}",
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
