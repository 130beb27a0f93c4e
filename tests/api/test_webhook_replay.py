"""Replaying a range of events to an endpoint over the API, both databases (docs/webhooks.md,
Replaying events): acknowledged deliveries sent again, missing ones made, only the endpoint's
types, audited; refused ranges write nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from pool.kit.clock import isoformat_z, utc_now
from pool.kit.db import Database
from pool.kit.tables import audit_log, delivery, event
from pool.webhooks.events_repository import insert_event
from tests.fixtures.helpers import auth, make_key

ENDPOINTS = "/api/v1/webhooks/endpoints"
REASON = "the receiver restored yesterday's backup"


@pytest.fixture
async def operator(db: Database) -> dict[str, str]:
    return auth(await make_key(db, scopes=["admin"]))


async def _endpoint(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["deposit.confirmed"]}
    response = await client.post(ENDPOINTS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def write_events(db: Database, *types: str) -> list[str]:
    ids = []
    async with db.write() as conn:
        for n, kind in enumerate(types):
            event_id = f"evt_replay_{n}_{kind.replace('.', '_')}"
            await insert_event(conn, event_id=event_id, type=kind, data={"n": n}, now=utc_now())
            ids.append(event_id)
    return ids


async def _deliveries(db: Database, endpoint_id: str) -> dict[str, str]:
    """event id → status of the endpoint's delivery of it."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(event.c.id, delivery.c.status)
            .select_from(delivery.join(event, event.c.seq == delivery.c.event_seq))
            .where(delivery.c.endpoint_id == endpoint_id)
        )
        return {row[0]: row[1] for row in rows.all()}


async def test_a_replay_sends_acknowledged_events_again_and_makes_missing_deliveries(
    client, db: Database, operator: dict[str, str]
) -> None:
    early = await _endpoint(client, operator)
    ids = await write_events(db, "deposit.confirmed", "deposit.pending", "deposit.confirmed")
    async with db.write() as conn:  # the early endpoint acknowledged both it subscribes to
        await conn.execute(update(delivery).values(status="succeeded", completed_at=utc_now()))
    late = await _endpoint(client, operator)  # subscribed after the events
    assert await _deliveries(db, late) == {}

    first = await client.post(
        f"{ENDPOINTS}/{early}/replay",
        json={"fromEventId": ids[0], "toEventId": ids[1], "reason": REASON},
        headers=operator,
    )
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {"requeued": 1, "created": 0, "total": 1}
    assert await _deliveries(db, early) == {ids[0]: "pending", ids[2]: "succeeded"}

    since = isoformat_z(utc_now() - timedelta(hours=1))
    second = await client.post(
        f"{ENDPOINTS}/{late}/replay", json={"since": since, "reason": REASON}, headers=operator
    )
    assert second.json()["data"] == {"requeued": 0, "created": 2, "total": 2}
    # deposit.pending is not a type the endpoint takes: never sent to it.
    assert await _deliveries(db, late) == {ids[0]: "pending", ids[2]: "pending"}
    again = await client.post(
        f"{ENDPOINTS}/{late}/replay", json={"since": since, "reason": REASON}, headers=operator
    )
    assert again.json()["data"]["total"] == 0  # on their way already
    async with db.read() as conn:
        audited = (
            await conn.execute(
                select(audit_log.c.subject, audit_log.c.details).where(
                    audit_log.c.action == "webhook.replay"
                )
            )
        ).all()
    assert [row.subject for row in audited] == [early, late, late]
    assert audited[0].details == {"reason": REASON, "requeued": 1, "created": 0}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"reason": REASON}, 400),  # no range
        (
            {"since": "2020-01-01", "fromEventId": "evt_x", "toEventId": "evt_y", "reason": REASON},
            400,
        ),
        ({"fromEventId": "evt_x", "reason": REASON}, 400),
        ({"fromEventId": "evt_nope", "toEventId": "evt_nope2", "reason": REASON}, 404),
        ({"since": "2020-01-01"}, 400),  # no reason
        ({"since": "not a moment", "reason": REASON}, 400),
    ],
)
async def test_a_refused_replay_writes_nothing(
    client, db: Database, operator: dict[str, str], body: dict[str, str], status: int
) -> None:
    endpoint_id = await _endpoint(client, operator)
    await write_events(db, "deposit.confirmed")
    before = await _deliveries(db, endpoint_id)
    response = await client.post(f"{ENDPOINTS}/{endpoint_id}/replay", json=body, headers=operator)
    assert response.status_code == status, response.text
    assert response.json()["success"] is False
    assert await _deliveries(db, endpoint_id) == before


async def test_replay_needs_the_operators_scope(client, db: Database, operator) -> None:
    endpoint_id = await _endpoint(client, operator)
    hooks_only = auth(await make_key(db, scopes=["webhooks:write"]))
    body = {"since": "2020-01-01", "reason": REASON}
    response = await client.post(f"{ENDPOINTS}/{endpoint_id}/replay", json=body, headers=hooks_only)
    assert response.status_code == 403 and "console:write" in response.json()["message"]
    missing = await client.post(f"{ENDPOINTS}/we_nope/replay", json=body, headers=operator)
    assert missing.status_code == 404
