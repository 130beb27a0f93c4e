"""Webhook endpoints: create (the secret is shown once), change, delete, rotate, test.

`add_endpoint` and `change_endpoint` are the use cases the API and the CLI share: they check
the URL and own their write transaction; the other functions run in the caller's. Secrets are
stored sealed by `pool.kit.secret_box`; URLs are checked for shape (https, no credentials) and
for where they resolve by `pool.webhooks.urls`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.errors import NotFound, ValidationFailed
from pool.kit.secret_box import SecretBox, secret_box
from pool.vocabulary import EVENT_TYPES, TEST_EVENT, SignatureScheme
from pool.webhooks import endpoints_repository as repo
from pool.webhooks.events_repository import insert_event
from pool.webhooks.outbox import new_event_id
from pool.webhooks.urls import parse_webhook_url, resolve_target

# What an endpoint may subscribe to: every type in the API's event table. `test.event` is sent
# on demand to one endpoint whatever its subscriptions; listing it is accepted and changes nothing.
SUBSCRIBABLE = (*EVENT_TYPES, TEST_EVENT)
# After a rotation the old secret still signs (the timestamped scheme carries both) this long.
ROTATION_GRACE = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    description: str | None
    events: tuple[str, ...]
    signature_scheme: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def check_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(SUBSCRIBABLE))
    if not events or unknown:
        raise ValidationFailed(
            f"events must be a non-empty list of: {', '.join(SUBSCRIBABLE)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return sorted(set(events))


def _endpoint(row: repo.EndpointRow) -> Endpoint:
    return Endpoint(
        row.id,
        row.url,
        row.description,
        row.events,
        row.signature_scheme,
        row.enabled,
        row.created_at,
        row.updated_at,
        row.previous_secret_expires_at,
    )


async def checked_url(url: str, *, settings: Settings) -> str:
    """The URL as stored, once its shape and where it resolves are acceptable."""
    allow = settings.webhook_allow_private
    target = parse_webhook_url(url, allow_private=allow)
    await resolve_target(target, allow_private=allow)
    return target.url


async def add_endpoint(
    db: Database,
    settings: Settings,
    *,
    url: str,
    events: Sequence[str],
    scheme: SignatureScheme,
    description: str | None,
) -> tuple[Endpoint, str]:
    """A new endpoint and its secret, in plain text this once."""
    checked = await checked_url(url, settings=settings)
    box = secret_box(settings)
    async with db.write() as conn:
        return await create_endpoint(
            conn,
            box,
            url=checked,
            events=events,
            scheme=scheme,
            description=description,
            now=utc_now(),
        )


async def change_endpoint(
    db: Database,
    settings: Settings,
    *,
    endpoint_id: str,
    url: str | None,
    events: Sequence[str] | None,
    scheme: SignatureScheme | None,
    description: str | None,
    enabled: bool | None,
) -> Endpoint:
    """Change what is given (None: unchanged); a new URL is checked as a new endpoint's is."""
    checked = await checked_url(url, settings=settings) if url is not None else None
    async with db.write() as conn:
        return await update_endpoint(
            conn,
            endpoint_id=endpoint_id,
            url=checked,
            events=events,
            scheme=scheme,
            description=description,
            enabled=enabled,
            now=utc_now(),
        )


async def create_endpoint(
    conn: AsyncConnection,
    box: SecretBox,
    *,
    url: str,
    events: Sequence[str],
    scheme: SignatureScheme,
    description: str | None,
    now: datetime,
) -> tuple[Endpoint, str]:
    """The endpoint and its secret, in plain text this once."""
    secret = new_secret()
    endpoint_id = "we_" + secrets.token_hex(12)
    values = {
        "id": endpoint_id,
        "url": url,
        "description": description,
        "signature_scheme": scheme,
        "secret_encrypted": box.seal(secret),
        "enabled": True,
        "created_at": now,
        "updated_at": now,
    }
    await repo.insert_endpoint(conn, values, check_events(events))
    return await get_endpoint(conn, endpoint_id), secret


async def get_endpoint(conn: AsyncConnection, endpoint_id: str) -> Endpoint:
    return _endpoint(await _live_row(conn, endpoint_id))


async def _live_row(conn: AsyncConnection, endpoint_id: str) -> repo.EndpointRow:
    found = await repo.live_endpoints(conn, endpoint_id=endpoint_id)
    if not found:
        raise NotFound(f"No webhook endpoint {endpoint_id}", code="ENDPOINT_NOT_FOUND")
    return found[0]


async def list_endpoints(conn: AsyncConnection) -> list[Endpoint]:
    return [_endpoint(row) for row in await repo.live_endpoints(conn)]


async def update_endpoint(
    conn: AsyncConnection,
    *,
    endpoint_id: str,
    url: str | None,
    events: Sequence[str] | None,
    scheme: SignatureScheme | None,
    description: str | None,
    enabled: bool | None,
    now: datetime,
) -> Endpoint:
    await get_endpoint(conn, endpoint_id)
    changes = {
        key: value
        for key, value in (
            ("url", url),
            ("signature_scheme", scheme),
            ("description", description),
            ("enabled", enabled),
        )
        if value is not None
    }
    await repo.update_endpoint(conn, endpoint_id=endpoint_id, values={**changes, "updated_at": now})
    if events is not None:
        await repo.replace_subscriptions(conn, endpoint_id=endpoint_id, events=check_events(events))
    return await get_endpoint(conn, endpoint_id)


async def delete_endpoint(conn: AsyncConnection, *, endpoint_id: str, now: datetime) -> int:
    """Delete (history kept) and cancel its pending deliveries; returns how many."""
    await get_endpoint(conn, endpoint_id)
    await repo.update_endpoint(
        conn,
        endpoint_id=endpoint_id,
        values={"deleted_at": now, "enabled": False, "updated_at": now},
    )
    await repo.replace_subscriptions(conn, endpoint_id=endpoint_id, events=())
    return await repo.cancel_pending(conn, endpoint_id=endpoint_id, now=now)


async def rotate_secret(
    conn: AsyncConnection, box: SecretBox, *, endpoint_id: str, now: datetime
) -> tuple[Endpoint, str]:
    row = await _live_row(conn, endpoint_id)
    secret = new_secret()
    await repo.update_endpoint(
        conn,
        endpoint_id=endpoint_id,
        values={
            "secret_encrypted": box.seal(secret),
            "previous_secret_encrypted": row.secret_encrypted,
            "previous_secret_expires_at": now + ROTATION_GRACE,
            "updated_at": now,
        },
    )
    return await get_endpoint(conn, endpoint_id), secret


async def send_test_event(conn: AsyncConnection, *, endpoint_id: str, now: datetime) -> str:
    """A `test.event` for this endpoint alone (subscriptions do not apply). Returns its id."""
    await get_endpoint(conn, endpoint_id)
    event_id = new_event_id()
    data = {"message": "addrpool test event", "endpointId": endpoint_id}
    seq = await insert_event(
        conn, event_id=event_id, type=TEST_EVENT, data=data, now=now, to_subscribers=False
    )
    await repo.insert_delivery(
        conn,
        delivery_id="dlv_" + secrets.token_hex(12),
        event_seq=seq,
        endpoint_id=endpoint_id,
        now=now,
    )
    return event_id
