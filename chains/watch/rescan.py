"""`addrpool rescan`: read a block range again and record whatever is missing — the tokens'
Transfer logs and, on a chain watching its coin, the coin's transfers (each block's
transactions and, with a trace API, its trace), as the watcher reads them.

Safe beside a running watcher: recording is idempotent (invariant 5, docs/design.md), the cursor and
the block window are never touched, and nothing above the watcher's cursor is read (that range is
the watcher's own). A transfer is recorded only if its block is canonical right now: the block's
header is fetched again and must carry the block hash the transfer was read with.

So a rescan takes no part in the chain's leadership (Invariant 15, watch.leadership): it is an
operator's one-off command, run while a worker watches, and it writes nothing that a second
writer could make wrong — no cursor, no window, only rows that are the same whoever writes them
first (a racing range skips what the rescan wrote, and the other way round).

The command reads through the chain's endpoint failover: a range an endpoint failed to serve
is read again from the next one, and what was recorded before is not read again.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

from chains.endpoints import EndpointPool
from chains.evm.erc20 import TransferLog
from chains.evm.native import NativeTransfer
from chains.presets import ChainConfig
from chains.reader import ChainReader, RangeTooLarge
from chains.rpc import RpcClient
from chains.watch.address_book import AddressBook
from pool.chain_state.repository import load_cursor
from pool.deposits import ledger
from pool.kit.clock import utc_now
from pool.kit.config_sections import Tracer
from pool.kit.db import Database
from pool.kit.errors import ValidationFailed

log = logging.getLogger("addrpool.watcher")


@dataclass(slots=True)
class RescanReport:
    chain_id: str
    from_block: int
    to_block: int
    logs: int = 0  # token Transfer logs read
    transfers: int = 0  # to pool addresses, tokens' and the coin's
    coins: int = 0  # of which the chain's coin
    # How the coin's internal transfers were read ("none": top-level only); None: not watched.
    tracer: Tracer | None = None
    recorded: int = 0
    reopened: int = 0
    # The first block not recorded yet: where an endpoint taking over carries on.
    next_block: int = field(init=False)

    def __post_init__(self) -> None:
        self.next_block = self.from_block


async def rescan(
    chain: ChainConfig,
    db: Database,
    endpoints: EndpointPool,
    *,
    from_block: int,
    to_block: int | None,
) -> RescanReport:
    """Raises ValidationFailed for a range the watcher has not reached, ChainUnavailable when
    no endpoint could serve (what was recorded until then stays recorded)."""
    report = await plan_rescan(chain, db, from_block=from_block, to_block=to_block)
    await endpoints.serve(functools.partial(scan, chain, db, report=report))
    return report


async def plan_rescan(
    chain: ChainConfig, db: Database, *, from_block: int, to_block: int | None
) -> RescanReport:
    """The range to read again, checked against the watcher's cursor; nothing read yet."""
    async with db.read() as conn:
        cursor = await load_cursor(conn, chain.chain_id)
    if cursor is None:
        raise ValidationFailed(f"{chain.chain_id} has never been watched: nothing to rescan")
    last = cursor.block_number if to_block is None else min(to_block, cursor.block_number)
    if from_block > last:
        raise ValidationFailed(
            f"nothing to rescan: from block {from_block} is above {last} "
            f"(the watcher's cursor is at {cursor.block_number})"
        )
    return RescanReport(chain.chain_id, from_block, last)


async def scan(
    chain: ChainConfig, db: Database, client: RpcClient, *, report: RescanReport
) -> None:
    """Read what is left of the report's range from one endpoint, range by range."""
    book = AddressBook(chain.protocol)
    await book.refresh(db)
    reader = ChainReader(chain, client)
    tracer = chain.tracer
    if chain.native is not None and tracer == "auto":
        tracer = await reader.probe_tracer()
    report.tracer = tracer if chain.native is not None else None
    while report.next_block <= report.to_block:
        start = report.next_block
        end = min(report.to_block, start + chain.max_block_range - 1)
        await _rescan_range(db, reader, book, start, end, report, tracer)


async def _rescan_range(
    db: Database,
    reader: ChainReader,
    book: AddressBook,
    start: int,
    end: int,
    report: RescanReport,
    tracer: Tracer,
) -> None:
    try:
        logs, tokens = await reader.transfers(start, end, book)
    except RangeTooLarge:
        if start == end:
            raise
        middle = (start + end) // 2
        await _rescan_range(db, reader, book, start, middle, report, tracer)
        await _rescan_range(db, reader, book, middle + 1, end, report, tracer)
        return
    found: list[TransferLog | NativeTransfer] = [*tokens]
    if reader.chain.native is not None:
        found += (await reader.native_transfers(start, end, book, tracer))[1]
    coins = len(found) - len(tokens)
    # Fetched again after the transfers were read: each must still be in the canonical block.
    headers = await reader.headers(sorted({t.block_number for t in found}))
    reader.check_logs_match(found, headers)  # ChainMoved: stop, rather than record a stale log
    async with db.write() as conn:
        changes = await ledger.record_transfers(
            conn,
            chain_id=reader.chain.chain_id,
            protocol=reader.chain.protocol,
            transfers=[reader.observed(t, headers) for t in found],
            now=utc_now(),
        )
    report.logs += logs
    report.transfers += len(found)
    report.coins += coins
    report.recorded += changes.recorded
    report.reopened += changes.reopened
    report.next_block = end + 1
    log.info(
        "range rescanned",
        extra={
            "chain": reader.chain.chain_id,
            "block_from": start,
            "block_to": end,
            "deposits": changes.recorded,
        },
    )
