"""The event feed: the outbox's events in a stable order (`seq`), after a cursor, for receivers
that pull (`GET /api/v1/events`, docs/webhooks.md "Recovering by pulling").

A page ends at a *bound*: on SQLite the newest event (one writer, so commit order is seq
order), on PostgreSQL the settled horizon (pool/webhooks/feed_horizon.py), below which no event
can still appear. The next cursor is the last event returned, or the bound when the page holds
every match up to it, so a filtered reader does not walk the same unmatched events again.

A long poll holds no database connection while it waits: one poller per database and process
looks for a new bound every POLL_SECONDS while anybody waits, and wakes the waiters when it
moves; each then reads its own page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass, replace

from pool.kit.db import Database
from pool.kit.errors import ValidationFailed
from pool.vocabulary import EVENT_TYPES, TEST_EVENT
from pool.webhooks.feed_horizon import SettledHorizon
from pool.webhooks.feed_repository import FeedEvent, events_between, newest_seq

FEED_TYPES = (*EVENT_TYPES, TEST_EVENT)  # everything the outbox holds
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_WAIT_SECONDS = 60
POLL_SECONDS = 0.25
# A read on PostgreSQL waits this long at most for the writers it saw to finish (usually
# milliseconds), so a plain read shows what committed before it.
READ_PATIENCE_SECONDS = 0.25
_CURSOR_PREFIX = "seq:"
MAX_SEQ = 2**63 - 1  # the column is a BIGINT
log = logging.getLogger("addrpool.webhooks")


def encode_cursor(seq: int) -> str:
    """Opaque to receivers (base64url of `seq:<n>`): its form may change, its order will not."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    message = "after must be a cursor this API returned (nextCursor)"
    try:
        padded = (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
        decoded = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
    except (ValueError, UnicodeError, binascii.Error):
        raise _invalid_cursor(message) from None
    digits = decoded.removeprefix(_CURSOR_PREFIX)
    if not decoded.startswith(_CURSOR_PREFIX) or not (digits.isascii() and digits.isdigit()):
        raise _invalid_cursor(message)
    if int(digits) > MAX_SEQ:
        raise _invalid_cursor(message)
    return int(digits)


def _invalid_cursor(message: str) -> ValidationFailed:
    return ValidationFailed(
        message, code="INVALID_CURSOR", details=[{"field": "after", "message": message}]
    )


def parse_types(text: str | None) -> tuple[str, ...]:
    """`types`: a comma-separated list of known event types; absent means all of them."""
    if text is None:
        return ()
    types = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not types or set(types) - set(FEED_TYPES):
        message = f"types must be a comma-separated list of: {', '.join(FEED_TYPES)}"
        raise ValidationFailed(message, details=[{"field": "types", "message": message}])
    return types


@dataclass(frozen=True, slots=True)
class FeedQuery:
    after: int  # the seq the reader has seen everything up to
    types: tuple[str, ...] = ()  # empty: every type
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[FeedEvent]
    next_after: int
    has_more: bool


class EventFeed:
    """The feed of one database, shared by the requests of this process (`feed_for`)."""

    def __init__(self, db: Database) -> None:
        # Weak: `_feeds` keeps a feed as long as its database lives, and no longer.
        self._database = weakref.ref(db)
        self._horizon = None if db.is_sqlite else SettledHorizon()
        self._bound = 0  # the newest bound seen (the poller's, or any read's)
        self._moved = asyncio.Event()  # set (and replaced) when the bound moves
        self._waiters = 0
        self._nobody_waits = asyncio.Event()  # ends the poller's pause when the last waiter left
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def _db(self) -> Database:
        db = self._database()
        if db is None:
            raise RuntimeError("the feed's database is gone")
        return db

    @property
    def waiting(self) -> int:
        """How many long polls are waiting now."""
        return self._waiters

    async def read(self, query: FeedQuery, *, patience: float = READ_PATIENCE_SECONDS) -> FeedPage:
        """One page; ValidationFailed when the cursor is ahead of every event written."""
        if self._horizon is not None:
            horizon = await self._horizon.advance(self._db, patience=patience)
            bound, newest = horizon.settled, horizon.issued
            _check_cursor(query.after, newest)
            async with self._db.read() as conn:  # a later statement than the settling look
                found = await events_between(
                    conn, after=query.after, up_to=bound, types=query.types, limit=query.limit + 1
                )
        else:
            async with self._db.read() as conn:
                bound = await newest_seq(conn)
                _check_cursor(query.after, bound)
                found = await events_between(
                    conn, after=query.after, up_to=bound, types=query.types, limit=query.limit + 1
                )
        self._note_bound(bound)
        if len(found) > query.limit:
            page = found[: query.limit]
            return FeedPage(page, next_after=page[-1].seq, has_more=True)
        return FeedPage(found, next_after=max(query.after, bound), has_more=False)

    async def wait_for(self, query: FeedQuery, *, seconds: float) -> FeedPage:
        """A page with at least one event, or an empty one after `seconds` (or at shutdown)."""
        deadline = time.monotonic() + seconds
        page = await self.read(query)
        self._waiters += 1
        try:
            while not page.events and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                query = replace(query, after=page.next_after)
                # Past what this read saw as well: a bound that went back (events deleted)
                # must not wake it again and again.
                if await self._moved_past(max(query.after, self._bound), within=remaining):
                    page = await self.read(query, patience=0.0)
        finally:
            self._waiters -= 1
            if not self._waiters:
                self._nobody_waits.set()
        return page

    def stop_waiting(self) -> None:
        """Shutdown: every long poll answers now with what it has, and new ones do not wait."""
        self._stopping = True
        self._wake()

    async def _moved_past(self, after: int, *, within: float) -> bool:
        """True once the bound is past `after`; False after `within` seconds or at shutdown."""
        self._start_poller()
        deadline = time.monotonic() + within
        while self._bound <= after and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), timeout=remaining)
        return not self._stopping

    def _start_poller(self) -> None:
        self._nobody_waits.clear()
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="event-feed-poller")

    async def _poll(self) -> None:
        """Looks for a new bound while anybody waits. A failed look (the database restarting)
        is tried again at the next tick; the waiters' own reads report errors."""
        while self._waiters and not self._stopping:
            try:
                await self._look()
            except Exception:  # the loop goes on: the next tick tries again
                log.warning("event feed poll failed; will retry", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nobody_waits.wait(), timeout=POLL_SECONDS)

    async def _look(self) -> None:
        if self._horizon is not None:
            self._note_bound((await self._horizon.advance(self._db)).settled)
            return
        async with self._db.read() as conn:
            self._note_bound(await newest_seq(conn))

    def _note_bound(self, bound: int) -> None:
        if bound > self._bound:
            self._bound = bound
            self._wake()

    def _wake(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()


def _check_cursor(after: int, newest: int) -> None:
    """A cursor past the newest event was not handed out by this database (another one, or
    this one restored from a backup): reading on would skip the events still to come."""
    if after > newest:
        raise _invalid_cursor(
            "after is past the newest event of this database (a cursor from another database, "
            "or this one restored from an older backup?): read again from the start, deduping "
            "by event id"
        )


_feeds: weakref.WeakKeyDictionary[Database, EventFeed] = weakref.WeakKeyDictionary()


def feed_for(db: Database) -> EventFeed:
    feed = _feeds.get(db)
    if feed is None:
        feed = _feeds[db] = EventFeed(db)
    return feed


def stop_all_waiting() -> None:
    """For the server's shutdown: every long poll in this process answers at once."""
    for feed in list(_feeds.values()):
        feed.stop_waiting()
