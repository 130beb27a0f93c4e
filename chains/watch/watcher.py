"""Follow one chain: token Transfer logs to pool addresses, confirmations, reorganisations.

One poll: refresh the address book, read the head, re-check the stored tip hash (a reorg otherwise
goes unseen when it does not change the height), scan forward in ranges, then confirm what is deep
enough. Each range is one transaction: deposits, events, block hashes and cursor together, so the
cursor never passes a block that failed (invariant 6, docs/design.md). An error anywhere in a range
leaves the cursor where it was and the next poll does the range again; recording is idempotent
(Invariant 5), so doing it again is always safe. Every transaction that writes goes through `write`:
it commits only while this watcher still leads the chain (Invariant 15, see
chains.watch.leadership).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from chains.evm.erc20 import BlockHeader, TransferLog
from chains.evm.native import NativeTransfer
from chains.presets import ChainConfig
from chains.reader import ChainMoved, ChainReader, RangeTooLarge, block_moment
from chains.rpc import RpcClient, RpcError
from chains.watch.address_book import AddressBook
from chains.watch.leadership import Leadership
from chains.watch.reorg import GENESIS_PARENT, alert_deep_reorg, common_ancestor, tip_is_canonical
from chains.watch.scan_range import Fetched, Range, ReadAhead
from chains.watch.tracers import EndpointTracers
from pool.chain_state import repository as chain_state
from pool.chain_state.repository import Cursor, StoredBlock
from pool.deposits import ledger
from pool.deposits.ledger_repository import pending_up_to
from pool.kit.clock import utc_now
from pool.kit.config_sections import Tracer
from pool.kit.db import Database, plan_for_given_values

log = logging.getLogger("addrpool.watcher")
RANGE_GROWTH_AFTER = 3  # successful ranges before the working range doubles again


@dataclass(slots=True)
class PollReport:
    head: int = 0
    cursor: int = 0
    blocks: int = 0
    deposits: int = 0
    confirmed: int = 0
    reverted: int = 0
    reorgs: int = 0


class ChainWatcher:
    def __init__(
        self,
        chain: ChainConfig,
        db: Database,
        book: AddressBook,
        client: RpcClient,
        leadership: Leadership,
        *,
        order_cooldown: timedelta = ledger.DEFAULT_ORDER_COOLDOWN,
    ) -> None:
        self.chain = chain
        self.order_cooldown = order_cooldown  # [orders] cooldown: orders complete in our writes
        self.db = db
        self.leadership = leadership
        self.book = book
        self.reader = ChainReader(chain, client)
        self._recorded_head: int | None = None
        self.block_range = chain.max_block_range
        self._good_ranges = 0
        # How internal transfers of the chain's coin are read; "auto" asks each endpoint once.
        self.tracers = EndpointTracers(chain)

    def use(self, client: RpcClient) -> None:
        """Serve the next poll from this endpoint (the runner picks it; see chains.endpoints)."""
        if client is not self.reader.client:
            self.reader = ChainReader(self.chain, client)
            self._recorded_head = None

    @property
    def client(self) -> RpcClient:
        return self.reader.client

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction of this chain's state, committed only while this watcher leads it
        (LeadershipLost otherwise, and nothing of it is written)."""
        return self.leadership.write(self.db)

    async def poll(self, stop: asyncio.Event | None = None) -> PollReport:
        report = PollReport()
        await self.book.refresh(self.db)
        head = await self.reader.head()
        cursor = await self._cursor(head)
        await self._record_head(head)
        if not await tip_is_canonical(self.reader, cursor):
            cursor = await self._roll_back(cursor, report)
        cursor = await self._catch_up(cursor, head, report, stop)
        await self._confirm(head, report)
        report.head, report.cursor = head, cursor.block_number
        return report

    async def _catch_up(
        self, cursor: Cursor, head: int, report: PollReport, stop: asyncio.Event | None
    ) -> Cursor:
        """Scan up to `head`, range by range, reading the next range while this one is written.

        Reading ahead changes nothing that is checked: a range's headers must still chain to
        the tip the previous range committed (`_record`), so a reorg in between is caught there.
        """
        ahead = self._read_ahead(cursor.block_number, head)
        try:
            while ahead is not None and not (stop and stop.is_set()):
                try:
                    fetched = await ahead.task
                except RangeTooLarge as exc:
                    self._shrink_range(ahead.span.end - ahead.span.start + 1, exc)
                    ahead = self._read_ahead(cursor.block_number, head)
                    continue
                self._range_worked()
                ahead = self._read_ahead(fetched.span.end, head)
                cursor = await self._record(cursor, fetched, report)
                await self._confirm(head, report)
        except ChainMoved as exc:
            log.warning(
                "chain moved during a scan; checking for a reorg",
                extra=self.log_context(error=str(exc)),
            )
            cursor = await self._roll_back(cursor, report)
        finally:
            if ahead is not None:
                await ahead.discard()
        return cursor

    # -- head and cursor ------------------------------------------------------------------

    async def _cursor(self, head: int) -> Cursor:
        async with self.db.read() as conn:
            cursor = await chain_state.load_cursor(conn, self.chain.chain_id)
        if cursor is not None:
            return cursor
        return await self._create_cursor(head)

    async def _create_cursor(self, head: int) -> Cursor:
        """A chain seen for the first time starts at `start_block`, or at its head block."""
        first = self.chain.start_block if self.chain.start_block is not None else head
        number = min(first, head + 1) - 1
        start = await self.reader.header(number) if number >= 0 else None
        now = utc_now()
        cursor = Cursor(
            self.chain.chain_id,
            number,
            start.hash if start else GENESIS_PARENT,
            head,
            self.chain.confirmations,
            self.client.endpoint,
            now,
            now,
        )
        async with self.write() as conn:
            await chain_state.create_cursor(conn, cursor)
            if start is not None:  # the first block a reorg walk-back can fall back on
                await chain_state.save_blocks(
                    conn,
                    chain_id=self.chain.chain_id,
                    blocks=[StoredBlock(start.number, start.hash, start.parent_hash)],
                    keep_from=head - self.chain.window + 1,
                )
        log.info("watching a new chain", extra=self.log_context(block_from=number + 1, head=head))
        return cursor

    async def _record_head(self, head: int) -> None:
        if head == self._recorded_head:
            return
        async with self.write() as conn:
            await chain_state.record_head(
                conn,
                chain_id=self.chain.chain_id,
                head=head,
                confirmations=self.chain.confirmations,
                endpoint=self.client.endpoint,
                now=utc_now(),
            )
        self._recorded_head = head

    def _shrink_range(self, tried: int, exc: RangeTooLarge) -> None:
        if tried <= 1:
            raise RpcError(self.client.endpoint, f"a one-block log query is refused: {exc}")
        self.block_range = max(1, tried // 2)
        self._good_ranges = 0
        log.info("log range split", extra=self.log_context(blocks=self.block_range, error=str(exc)))

    def _range_worked(self) -> None:
        self._good_ranges += 1
        if (
            self._good_ranges >= RANGE_GROWTH_AFTER
            and self.block_range < self.chain.max_block_range
        ):
            self.block_range = min(self.chain.max_block_range, self.block_range * 2)
            self._good_ranges = 0

    # -- scanning -------------------------------------------------------------------------

    def _read_ahead(self, after: int, head: int) -> ReadAhead | None:
        """Start reading the range after block `after`, if there is one below the head."""
        if after >= head:
            return None
        span = Range(after + 1, min(head, after + self.block_range), head)
        return ReadAhead(span, asyncio.create_task(self._fetch(span)))

    async def _fetch(self, span: Range) -> Fetched:
        """A range's Transfers to pool addresses and the headers that check them: one endpoint."""
        reader = self.reader
        logs, tokens = await reader.transfers(span.start, span.end, self.book)
        found: list[TransferLog | NativeTransfer] = [*tokens]
        read: dict[int, BlockHeader] = {}  # headers of the full blocks read for the coin
        if self.chain.native is not None:
            tracer = await self._tracer()
            read, coins = await reader.native_transfers(span.start, span.end, self.book, tracer)
            found += coins
        deep = {t.block_number for t in found if t.block_number <= self._deepest(span.head)}
        wanted = {*self._heights_to_check(span), *deep}
        headers = {n: read[n] for n in wanted if n in read}
        headers |= await reader.headers(sorted(wanted - headers.keys()))
        # Every log at a confirmable depth is now checked against its canonical header:
        # what `_confirm` would fetch and check for it later (see ledger.record_transfers).
        reader.check_logs_match(found, headers)
        return Fetched(span, logs, found, headers)

    async def _tracer(self) -> Tracer:
        return await self.tracers.of(self.reader, self.log_context())

    @property
    def tracer(self) -> Tracer | None:
        """The tracer the serving endpoint is read with (None: not asked yet)."""
        return self.tracers.known(self.client.endpoint)

    @property
    def internal_transfers_note(self) -> str | None:
        """Why internal transfers of the chain's coin are not watched, if they are not."""
        return self.tracers.note(self.client.endpoint)

    async def _record(self, cursor: Cursor, fetched: Fetched, report: PollReport) -> Cursor:
        """One transaction: the range's deposits, events, block hashes and the cursor."""
        span, headers = fetched.span, fetched.headers
        self.reader.check_links((cursor.block_number, cursor.block_hash), headers)
        end_hash = headers[span.end].hash
        # `write` plans this transaction for its values (see chain_state.lock_leadership).
        async with self.write() as conn:
            changes = await ledger.record_transfers(
                conn,
                chain_id=self.chain.chain_id,
                protocol=self.chain.protocol,
                transfers=[self.reader.observed(t, headers) for t in fetched.found],
                now=utc_now(),
                confirmed_through=self._deepest(span.head),
                order_cooldown=self.order_cooldown,
            )
            await chain_state.save_blocks(
                conn,
                chain_id=self.chain.chain_id,
                blocks=[StoredBlock(h.number, h.hash, h.parent_hash) for h in headers.values()],
                keep_from=span.head - self.chain.window + 1,
            )
            await chain_state.move_cursor(
                conn,
                chain_id=self.chain.chain_id,
                block_number=span.end,
                block_hash=end_hash,
                now=utc_now(),
                block_time=block_moment(headers[span.end]),
            )
        report.blocks += span.end - span.start + 1
        report.deposits += changes.recorded + changes.reopened
        report.confirmed += changes.confirmed
        # A quiet block a second is not news; a deposit or a catch-up range is.
        quiet = not fetched.found and span.end == span.start
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "range scanned",
            extra=self.log_context(
                block_from=span.start,
                block_to=span.end,
                logs=fetched.logs,
                deposits=changes.recorded,
            ),
        )
        return Cursor(
            cursor.chain_id,
            span.end,
            end_hash,
            span.head,
            cursor.confirmations,
            cursor.endpoint,
            cursor.head_at,
            utc_now(),
        )

    def _heights_to_check(self, span: Range) -> list[int]:
        """Every height inside the reorg window, and the range's last block in any case.

        Below the window a reorg is beyond what we promise to follow (docs/design.md, invariant 7),
        so a catch-up scan there does not pay for a header per block.
        """
        first_in_window = max(span.start, span.head - self.chain.window + 1)
        return sorted({*range(first_in_window, span.end + 1), span.end})

    # -- confirmations --------------------------------------------------------------------

    async def _confirm(self, head: int, report: PollReport) -> None:
        """Confirm pending deposits at the required depth whose block is still canonical."""
        async with self.db.read() as conn:
            await plan_for_given_values(conn)
            ready = await pending_up_to(
                conn, chain_id=self.chain.chain_id, block_number=self._deepest(head)
            )
        if not ready:
            return
        headers = await self.reader.headers(sorted({d.block_number for d in ready}))
        verified = {
            d.id: d.block_hash for d in ready if headers[d.block_number].hash == d.block_hash
        }
        # Below our cursor, whose tip was re-checked this poll: a hash that changed means the row
        # missed a rollback (a rescan raced it, say). Revert it now rather than leave it pending.
        orphaned = [d for d in ready if d.id not in verified]
        async with self.write() as conn:
            changes = await ledger.confirm_deposits(
                conn, verified=verified, now=utc_now(), order_cooldown=self.order_cooldown
            )
            if orphaned:
                changes += await ledger.revert_deposits(conn, orphaned=orphaned, now=utc_now())
        report.reverted += changes.reverted
        report.confirmed += changes.confirmed

    def _deepest(self, head: int) -> int:
        """The highest block with the required confirmations."""
        return head - self.chain.confirmations + 1

    # -- reorganisations ------------------------------------------------------------------

    async def _roll_back(self, cursor: Cursor, report: PollReport) -> Cursor:
        """Walk back to the common ancestor, revert what was above it, resume from there."""
        ancestor = await common_ancestor(self.db, self.reader, self.chain, cursor)
        now = utc_now()
        async with self.write() as conn:
            changes = await ledger.revert_above(
                conn, chain_id=self.chain.chain_id, block_number=ancestor.number, now=now
            )
            await chain_state.forget_blocks_above(
                conn, chain_id=self.chain.chain_id, number=ancestor.number
            )
            await chain_state.move_cursor(
                conn,
                chain_id=self.chain.chain_id,
                block_number=ancestor.number,
                block_hash=ancestor.hash,
                now=now,
            )
            if ancestor.deep:
                await alert_deep_reorg(
                    conn, chain_id=self.chain.chain_id, cursor=cursor, ancestor=ancestor, now=now
                )
        report.reorgs += 1
        report.reverted += changes.reverted
        log.warning(
            "reorg: rolled back",
            extra=self.log_context(
                from_block=cursor.block_number, to_block=ancestor.number, reverted=changes.reverted
            ),
        )
        return Cursor(
            cursor.chain_id,
            ancestor.number,
            ancestor.hash,
            cursor.head,
            cursor.confirmations,
            cursor.endpoint,
            cursor.head_at,
            now,
        )

    def log_context(self, **fields: object) -> dict[str, object]:
        return {
            "chain": self.chain.chain_id,
            "endpoint": self.client.endpoint,
            "epoch": self.leadership.epoch,
            **fields,
        }
