"""`GET /api/v1/events`: the outbox in order behind a cursor, filtered, paged, long-polled, and
on PostgreSQL never past an event whose transaction has not committed yet."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import audit_log, delivery, event
from pool.webhooks.feed import encode_cursor, feed_for
from pool.webhooks.outbox import record_event
from tests.fixtures.helpers import assert_error_response, auth, load_pool, make_key
from tests.fixtures.polling import wait_until_async

EVENTS = "/api/v1/events"
PG_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
async def reader(db: Database) -> dict[str, str]:
    return auth(await make_key(db, scopes=["webhooks:read"]))


async def write_events(db: Database, *types: str) -> list[str]:
    """One transaction per event, as the state changes that write them; their ids in order."""
    ids = []
    for n, type_ in enumerate(types):
        async with db.write() as conn:
            ids.append(await record_event(conn, type=type_, data={"n": n}, now=utc_now()))
    return ids


async def pull(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict:
    response = await client.get(EVENTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return dict(body["data"])


async def pull_all(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> tuple[list[dict], str]:
    """Every page from `after` (when given) until hasMore is false: the events and the cursor."""
    events: list[dict] = []
    while True:
        page = await pull(client, headers, **params)
        events += page["events"]
        params["after"] = page["nextCursor"]
        if page["hasMore"]:
            assert len(page["events"]) == params["limit"]
        if not page["hasMore"]:
            return events, page["nextCursor"]


async def test_an_event_reads_as_its_webhook_body(client, reader, db: Database) -> None:
    await load_pool(db, "evm", 1)
    admin = auth(await make_key(db, scopes=["admin"]))
    bind = {"depositReference": "r1", "protocol": "evm", "metadata": {"tier": 2}}
    bound = (await client.post("/api/v1/deposits/bind", json=bind, headers=admin)).json()["data"]
    page = await pull(client, reader)
    assert page["hasMore"] is False
    [pulled] = page["events"]
    assert set(pulled) == {"id", "type", "createdAt", "data"}
    assert pulled["id"].startswith("evt_") and pulled["createdAt"].endswith("Z")
    assert pulled["type"] == "deposit.address_bound"
    assert pulled["data"]["address"] == bound["address"]
    assert pulled["data"]["metadata"] == {"tier": 2}
    async with db.read() as conn:
        stored = (await conn.execute(select(event.c.id, event.c.data))).one()
    assert (pulled["id"], pulled["data"]) == (stored.id, stored.data)


async def test_pages_resume_from_the_cursor_without_loss_or_repeat(
    client, reader, db: Database
) -> None:
    first = await write_events(db, *["order.created"] * 23)
    pulled, cursor = await pull_all(client, reader, limit=5)
    assert [e["id"] for e in pulled] == first
    again = await pull(client, reader, after=cursor)
    assert again["events"] == [] and again["nextCursor"] == cursor
    later = await write_events(db, "deposit.pending", "deposit.confirmed")
    pulled, cursor = await pull_all(client, reader, after=cursor, limit=5)
    assert [e["id"] for e in pulled] == later
    assert [e["type"] for e in pulled] == ["deposit.pending", "deposit.confirmed"]


async def test_a_full_last_page_says_more_only_when_there_is_more(
    client, reader, db: Database
) -> None:
    ids = await write_events(db, *["order.created"] * 4)
    page = await pull(client, reader, limit=2)
    assert ([e["id"] for e in page["events"]], page["hasMore"]) == (ids[:2], True)
    page = await pull(client, reader, limit=2, after=page["nextCursor"])
    assert ([e["id"] for e in page["events"]], page["hasMore"]) == (ids[2:], False)


async def test_types_filter_and_the_cursor_skips_what_did_not_match(
    client, reader, db: Database
) -> None:
    ids = await write_events(
        db, "order.created", "deposit.confirmed", "order.completed", "deposit.pending"
    )
    wanted = "deposit.confirmed, order.completed"
    page = await pull(client, reader, types=wanted)
    assert [e["id"] for e in page["events"]] == [ids[1], ids[2]]
    # Everything up to the newest event was looked at: nothing before it comes back.
    assert page["nextCursor"] == encode_cursor(4)
    more = await write_events(db, "order.expired", "order.completed")
    page = await pull(client, reader, types=wanted, after=page["nextCursor"])
    assert [e["id"] for e in page["events"]] == [more[1]]


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"after": "not-a-cursor"}, "INVALID_CURSOR", "after"),
        ({"after": encode_cursor(1)[:-1] + "!"}, "INVALID_CURSOR", "after"),
        ({"after": "c2VxOi0x"}, "INVALID_CURSOR", "after"),  # seq:-1
        ({"after": encode_cursor(2**63)}, "INVALID_CURSOR", "after"),  # past a BIGINT
        ({"after": ""}, "INVALID_CURSOR", "after"),
        ({"after": encode_cursor(99)}, "INVALID_CURSOR", "after"),  # ahead of every event
        ({"types": "deposit.nope"}, "VALIDATION_FAILED", "types"),
        ({"types": " , "}, "VALIDATION_FAILED", "types"),
        ({"limit": 0}, "VALIDATION_FAILED", "limit"),
        ({"limit": 1001}, "VALIDATION_FAILED", "limit"),
        ({"wait": -1}, "VALIDATION_FAILED", "wait"),
        ({"wait": 61}, "VALIDATION_FAILED", "wait"),
        ({"wait": "nan"}, "VALIDATION_FAILED", "wait"),
    ],
)
async def test_bad_parameters_are_a_400_and_change_nothing(
    client, reader, db: Database, params: dict[str, Any], code: str, field: str
) -> None:
    await write_events(db, "order.created")
    before = await _counts(db)
    response = await client.get(EVENTS, params=params, headers=reader)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["success"], body["error"], body["code"]) == (False, "ValidationError", code)
    assert [d["field"] for d in body["details"]] == [field]
    assert await _counts(db) == before


async def _counts(db: Database) -> tuple[int, ...]:
    async with db.read() as conn:
        counted = [
            await conn.scalar(select(func.count()).select_from(t))
            for t in (event, delivery, audit_log)
        ]
    return tuple(int(n or 0) for n in counted)


async def test_only_keys_that_may_read_webhooks_pull(client, db: Database) -> None:
    for scopes in (["deposits:read", "orders:read"], ["webhooks:write"]):
        refused = await client.get(EVENTS, headers=auth(await make_key(db, scopes=scopes)))
        assert_error_response(
            refused,
            403,
            error="Forbidden",
            code="FORBIDDEN",
            message="This API key lacks the webhooks:read scope; an operator can create a key "
            "with it: addrpool keys create --name NAME --scopes webhooks:read",
        )
    assert (await client.get(EVENTS)).status_code == 401
    for scopes in (["webhooks:read"], ["admin"]):
        allowed = await client.get(EVENTS, headers=auth(await make_key(db, scopes=scopes)))
        assert allowed.status_code == 200, allowed.text


async def test_a_long_poll_answers_with_the_event_written_while_it_waits(
    client, reader, db: Database
) -> None:
    await write_events(db, "order.created")
    cursor = (await pull(client, reader))["nextCursor"]
    feed = feed_for(db)
    polled = asyncio.create_task(pull(client, reader, after=cursor, wait=30))
    await wait_until_async(lambda: feed.waiting == 1, what="the long poll waits")
    [written] = await write_events(db, "order.completed")
    page = await polled
    # An answer at the end of the wait would be empty: this one came with the event.
    assert [e["id"] for e in page["events"]] == [written]
    assert feed.waiting == 0


async def test_long_polls_hold_no_connection_while_they_wait(client, reader, db: Database) -> None:
    """Twenty waiting at once on a pool of at most ten connections (the `db` fixture's 5 + 5
    overflow): each would hold one if it kept its connection while waiting."""
    feed = feed_for(db)
    polls = [asyncio.create_task(pull(client, reader, wait=30)) for _ in range(20)]
    await wait_until_async(lambda: feed.waiting == 20, what="twenty long polls wait")
    [written] = await write_events(db, "order.created")
    for page in await asyncio.gather(*polls):
        assert [e["id"] for e in page["events"]] == [written]


async def test_a_long_poll_ends_empty_when_nothing_it_wants_arrives(
    client, reader, db: Database
) -> None:
    await write_events(db, "order.created")
    cursor = (await pull(client, reader))["nextCursor"]
    feed = feed_for(db)
    polled = asyncio.create_task(
        pull(client, reader, after=cursor, types="order.completed", wait=0.5)
    )
    await wait_until_async(lambda: feed.waiting == 1, what="the long poll waits")
    await write_events(db, "order.expired")  # not a type it asked for
    page = await polled
    assert page["events"] == [] and page["hasMore"] is False
    # The poller may or may not have seen the unwanted event before the wait ended.
    assert page["nextCursor"] in (cursor, encode_cursor(2))
    unwanted = await pull(client, reader, after=cursor, types="order.expired")
    assert [e["type"] for e in unwanted["events"]] == ["order.expired"]


async def test_shutdown_ends_a_long_poll_at_once(client, reader, db: Database) -> None:
    feed = feed_for(db)
    polled = asyncio.create_task(pull(client, reader, wait=60))
    await wait_until_async(lambda: feed.waiting == 1, what="the long poll waits")
    feed.stop_waiting()
    page = await asyncio.wait_for(polled, timeout=10)  # a guard against hanging, not a measure
    assert page["events"] == [] and page["nextCursor"] == encode_cursor(0)


@PG_ONLY
async def test_an_event_committed_late_is_not_skipped(client, reader, db: Database) -> None:
    """seq 1's transaction commits after seq 2's: a reader must not move past 1 meanwhile."""
    async with db.engine.connect() as slow, db.engine.connect() as fast:
        slow_tx = await slow.begin()
        late = await record_event(slow, type="order.created", data={"n": 1}, now=utc_now())
        async with fast.begin():
            early = await record_event(fast, type="order.created", data={"n": 2}, now=utc_now())
        async with db.read() as conn:  # seq 2 is visible, seq 1 is not: the trap is set
            assert (await conn.scalars(select(event.c.seq))).all() == [2]
        page = await pull(client, reader)
        assert page["events"] == [] and page["nextCursor"] == encode_cursor(0)
        await slow_tx.commit()
    pulled, _ = await pull_all(client, reader, after=page["nextCursor"], limit=10)
    assert [e["id"] for e in pulled] == [late, early]


@PG_ONLY
async def test_a_rolled_back_event_leaves_a_gap_the_feed_moves_past(
    client, reader, db: Database
) -> None:
    async with db.engine.connect() as doomed:
        doomed_tx = await doomed.begin()
        await record_event(doomed, type="order.created", data={"n": 1}, now=utc_now())
        [kept] = await write_events(db, "order.completed")
        assert (await pull(client, reader))["events"] == []
        await doomed_tx.rollback()
    page = await pull(client, reader)
    assert [e["id"] for e in page["events"]] == [kept]
    assert page["nextCursor"] == encode_cursor(2)


@PG_ONLY
async def test_a_long_poll_waits_out_the_late_commit(client, reader, db: Database) -> None:
    feed = feed_for(db)
    async with db.engine.connect() as slow:
        slow_tx = await slow.begin()
        late = await record_event(slow, type="order.created", data={"n": 1}, now=utc_now())
        [early] = await write_events(db, "order.completed")
        polled = asyncio.create_task(pull(client, reader, wait=30))
        await wait_until_async(lambda: feed.waiting == 1, what="the long poll waits")
        await slow_tx.commit()
    page = await polled
    assert [e["id"] for e in page["events"]] == [late, early]


@PG_ONLY
async def test_a_reader_between_commits_in_shuffled_order_gets_each_event_once(
    client, reader, db: Database
) -> None:
    """Eight transactions (the pool's room, the API's aside) take seqs 1..8 in turn (a reader looking after each) and commit in a
    shuffled order, the reader pulling after every commit: it is shown exactly the events up to
    the first one still uncommitted, and ends with every event, once, in order."""
    order = list(range(8))
    random.Random(7).shuffle(order)
    async with contextlib.AsyncExitStack() as stack:
        transactions, ids = [], []
        for n in range(8):
            conn = await stack.enter_async_context(db.engine.connect())
            transactions.append(await conn.begin())
            ids.append(await record_event(conn, type="order.created", data={"n": n}, now=utc_now()))
            assert (await pull(client, reader))["events"] == []
        pulled: list[str] = []
        cursor = encode_cursor(0)
        committed: set[int] = set()
        for n in order:
            await transactions[n].commit()
            committed.add(n)
            page = await pull(client, reader, after=cursor)
            pulled += [e["id"] for e in page["events"]]
            cursor = page["nextCursor"]
            prefix = next(i for i in range(9) if i not in committed)
            assert pulled == ids[:prefix]
    assert pulled == ids


async def test_a_receiver_recovers_a_1000_event_outage_by_pulling(
    client, reader, db: Database
) -> None:
    """The pattern docs/webhooks.md describes: the receiver keeps its last cursor, is down while
    1,000 events are written by four concurrent writers, comes back while they still write, and
    pulls from its cursor until it is level: every event once, none missing, in feed order."""
    before = await write_events(db, "order.created", "order.created")
    seen, cursor = await pull_all(client, reader, limit=100)
    assert [e["id"] for e in seen] == before
    written: list[str] = []

    async def writer(w: int) -> None:
        """250 events in transactions of five, as a state change writes a few at once."""
        for t in range(50):
            async with db.write() as conn:
                for n in range(5):
                    data = {"w": w, "t": t, "n": n}
                    written.append(
                        await record_event(conn, type="deposit.pending", data=data, now=utc_now())
                    )
            await asyncio.sleep(0)

    writers = asyncio.gather(*(writer(w) for w in range(4)))
    await wait_until_async(lambda: len(written) >= 500, what="the outage's first half")
    received: list[str] = []  # back: pull while the writers go on, then until level
    while True:
        done = writers.done()
        page = await pull(client, reader, after=cursor, limit=100, wait=1)
        received += [e["id"] for e in page["events"]]
        cursor = page["nextCursor"]
        if done and not page["events"]:
            break
    await writers
    assert len(written) == 1_000
    assert len(received) == len(set(received)) == 1_000  # nothing twice
    assert set(received) == set(written)  # nothing missing
    async with db.read() as conn:
        in_seq_order = list(
            (
                await conn.execute(
                    select(event.c.id).where(event.c.id.in_(written)).order_by(event.c.seq)
                )
            ).scalars()
        )
    assert received == in_seq_order
