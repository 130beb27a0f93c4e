"""Run a watcher per configured chain until told to stop: inside `serve`, or as `worker`.

On PostgreSQL one process at a time watches a chain: a session advisory lock per chain, held
as long as the watcher runs, makes the other workers standbys that take over when the holder
dies (its connection closes and PostgreSQL releases the lock). No home-made consensus. Each
leadership is fenced by an epoch, so a worker that lost its lock without noticing commits
nothing more (invariant 15, docs/design.md; chains.watch.leadership); it goes back to
standing by.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import timedelta

from chains.endpoints import AllEndpointsDown, EndpointPool, HealthNotes
from chains.presets import ChainConfig, watched_chains
from chains.rpc import RpcClient, RpcError
from chains.watch import leadership
from chains.watch.address_book import AddressBook
from chains.watch.watcher import ChainWatcher
from pool.alerts.repository import fire_alert, resolve_alert
from pool.chain_state.repository import record_endpoints
from pool.deposits.ledger import DEFAULT_ORDER_COOLDOWN
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.db_failures import log_failure
from pool.kit.errors import LeadershipLost
from pool.kit.loop import Backoff, run_every
from pool.vocabulary import RPC_ALL_DOWN, Protocol

log = logging.getLogger("addrpool.watcher")
ERROR_BACKOFF_MAX_SECONDS = 30.0


async def run_watchers(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    chains = watched_chains(settings)
    if not chains:
        log.info("no chain to watch: configure an RPC URL (see docs/configuration.md, Chains)")
        return
    settle_heap()
    books: dict[Protocol, AddressBook] = {}
    for chain in chains:
        books.setdefault(chain.protocol, AddressBook(chain.protocol))
    cooldown = settings.orders.cooldown
    await asyncio.gather(
        *(watch_forever(c, db, books[c.protocol], stop, order_cooldown=cooldown) for c in chains)
    )


def settle_heap() -> None:
    """Keep what the process has built so far (modules, tables, compiled statements) out of
    the garbage collector's full passes.

    A catch-up range parses thousands of log objects, so full collections come every few ranges,
    each walking every object the process holds and landing in the middle of a range; frozen objects
    are not walked, which makes the pause several times shorter (docs/performance.md). Nothing
    frozen is freed later, which is what long-lived objects want anyway.
    """
    gc.collect()
    gc.freeze()


async def watch_forever(
    chain: ChainConfig,
    db: Database,
    book: AddressBook,
    stop: asyncio.Event,
    *,
    order_cooldown: timedelta = DEFAULT_ORDER_COOLDOWN,
) -> None:
    endpoints = EndpointPool(
        [RpcClient(url, timeout=chain.rpc_timeout) for url in chain.rpc_urls],
        max_lag=chain.max_lag,
    )
    try:
        # Leadership lost (or the lock failed): back in the standbys' line, after them.
        await run_every(
            stop,
            lambda: _watch_while_leading(chain, db, book, endpoints, stop, order_cooldown),
            pause=leadership.STANDBY_RETRY_SECONDS,
            log=log,
            failure="the chain's lock or leadership failed; standing by again",
            context={"chain": chain.chain_id},
        )
    finally:
        await endpoints.close()


async def _watch_while_leading(
    chain: ChainConfig,
    db: Database,
    book: AddressBook,
    endpoints: EndpointPool,
    stop: asyncio.Event,
    order_cooldown: timedelta,
) -> None:
    """Stand by until elected, then watch the chain until stopped or no longer its leader
    (any other failure reaches `watch_forever`, which logs it and stands by again)."""
    try:
        async with leadership.leading(db, chain.chain_id, stop) as leader:
            if leader is None:
                return
            client = endpoints.endpoints[0].client
            watcher = ChainWatcher(chain, db, book, client, leader, order_cooldown=order_cooldown)
            await _poll_until_stopped(watcher, endpoints, leader.ended)
    except LeadershipLost as exc:
        log.warning("standing by again", extra={"chain": chain.chain_id, "error": str(exc)})


async def _poll_until_stopped(
    watcher: ChainWatcher, endpoints: EndpointPool, stop: asyncio.Event
) -> None:
    notes = HealthNotes()  # when endpoint health is worth a write (not every poll)

    async def poll() -> bool:
        served = await poll_with_failover(watcher, endpoints, stop)
        if served:
            tracer = watcher.tracer if watcher.chain.native is not None else None
            endpoints.note(watcher.client, watcher.internal_transfers_note, tracer=tracer)
        all_down = not served and _all_set_aside(endpoints)
        views = endpoints.view()
        if notes.due(views, all_down=all_down):
            await note_endpoints(watcher, endpoints, all_down=all_down)
            notes.written(views, all_down=all_down)
        return served

    # Back off on repeated failures; the cursor has not moved, so nothing is skipped. A failure
    # that is not a poll's (writing endpoint health) ends the leadership: `failure=None`.
    backoff = Backoff(watcher.chain.poll_interval, ceiling=ERROR_BACKOFF_MAX_SECONDS)
    await run_every(stop, poll, pause=backoff, log=log, failure=None)


async def poll_with_failover(
    watcher: ChainWatcher, endpoints: EndpointPool, stop: asyncio.Event | None
) -> bool:
    """One poll, moving on to the next endpoint when one fails; False if none could serve."""
    for _ in endpoints.endpoints:
        try:
            client = await endpoints.choose()
        except AllEndpointsDown as exc:
            log.error("every RPC endpoint is down", extra=watcher.log_context(error=str(exc)))
            return False
        watcher.use(client)
        try:
            await watcher.poll(stop)
        except LeadershipLost:
            raise  # not this endpoint's fault, and not to be retried: another worker leads
        except RpcError as exc:
            endpoints.set_aside(client, str(exc))
            continue
        except Exception as exc:
            log_failure(log, "poll failed; will retry", exc, watcher.log_context())
            return False
        endpoints.succeeded(client)
        return True
    return False


def _all_set_aside(endpoints: EndpointPool) -> bool:
    return all(view["state"] == "set_aside" for view in endpoints.view())


async def note_endpoints(watcher: ChainWatcher, endpoints: EndpointPool, *, all_down: bool) -> None:
    """Endpoint health for `/health` and `addrpool chains`; the all-down alert opens or closes."""
    chain_id = watcher.chain.chain_id
    now = utc_now()
    async with watcher.write() as conn:
        await record_endpoints(conn, chain_id=chain_id, endpoints=endpoints.view())
        subject = f"{RPC_ALL_DOWN}:{chain_id}"
        if all_down:
            await fire_alert(
                conn,
                kind=RPC_ALL_DOWN,
                subject=subject,
                severity="critical",
                value=str(len(endpoints.endpoints)),
                details={"chainId": chain_id, "endpoints": endpoints.view()},
                now=now,
            )
        else:
            await resolve_alert(conn, subject=subject, now=now)
