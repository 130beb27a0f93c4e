"""Run a watcher per configured chain until told to stop: inside `serve`, or as `worker`.

On PostgreSQL one process at a time watches a chain: a session advisory lock per chain, held
as long as the watcher runs, makes the other workers standbys that take over when the holder
dies (its connection closes and PostgreSQL releases the lock). No home-made consensus.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import text

from chains.address_book import AddressBook
from chains.presets import ChainConfig, watched_chains
from chains.rpc import RpcClient, RpcError
from chains.watcher import ChainWatcher
from pool.config import Settings
from pool.db import Database
from pool.domain import Protocol

log = logging.getLogger("addrpool.watcher")
STANDBY_RETRY_SECONDS = 5.0
ERROR_BACKOFF_MAX_SECONDS = 30.0


async def run_watchers(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    chains = watched_chains(settings)
    if not chains:
        log.info("no chain to watch: configure an RPC URL (see the README, Chains)")
        return
    books: dict[Protocol, AddressBook] = {}
    for chain in chains:
        books.setdefault(chain.protocol, AddressBook(chain.protocol))
    await asyncio.gather(*(watch_forever(c, db, books[c.protocol], stop) for c in chains))


@contextlib.asynccontextmanager
async def watchers_running(settings: Settings, db: Database) -> AsyncIterator[None]:
    """For `serve`: watchers beside the API; on exit the current batch commits, then they stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_watchers(settings, db, stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def watch_forever(
    chain: ChainConfig, db: Database, book: AddressBook, stop: asyncio.Event
) -> None:
    client = RpcClient(chain.rpc_urls[0], timeout=chain.rpc_timeout)
    watcher = ChainWatcher(chain, db, book, client)
    try:
        async with _chain_lock(db, chain.chain_id, stop) as held:
            if held:
                await _poll_until_stopped(watcher, stop)
    finally:
        await client.close()


async def _poll_until_stopped(watcher: ChainWatcher, stop: asyncio.Event) -> None:
    failures = 0
    while not stop.is_set():
        try:
            await watcher.poll(stop)
            failures = 0
        except RpcError as exc:
            failures += 1
            log.warning("poll failed; will retry", extra=watcher.log_context(error=str(exc)))
        except Exception:
            failures += 1
            log.exception("poll failed; will retry", extra=watcher.log_context())
        # Back off on repeated failures; the cursor has not moved, so nothing is skipped.
        delay = min(ERROR_BACKOFF_MAX_SECONDS, watcher.chain.poll_interval * 2**failures)
        await _sleep(stop, delay if failures else watcher.chain.poll_interval)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _lock_key(chain_id: str) -> int:
    digest = hashlib.sha256(f"addrpool:watch:{chain_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def _chain_lock(db: Database, chain_id: str, stop: asyncio.Event) -> AsyncIterator[bool]:
    """Yields True once this process is the chain's only watcher (False if stopped first)."""
    if db.is_sqlite:  # SQLite allows one process: nothing to coordinate
        yield True
        return
    async with db.autocommit() as conn:
        key = _lock_key(chain_id)
        while not stop.is_set():
            if await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
                break
            log.info("standby: another worker watches this chain", extra={"chain": chain_id})
            await _sleep(stop, STANDBY_RETRY_SECONDS)
        else:
            yield False
            return
        try:
            yield True
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
