"""Follow one chain: token Transfer logs to pool addresses, confirmations, reorganisations.

One poll: refresh the address book, read the head, re-check the stored tip hash (a reorg
otherwise goes unseen when it does not change the height), scan forward in ranges, then confirm
what is deep enough. Each range is one transaction: deposits, events, block hashes and cursor
together, so the cursor never passes a block that failed (Invariant 6). An error anywhere in a
range leaves the cursor where it was and the next poll does the range again; recording is
idempotent (Invariant 5), so doing it again is always safe.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chains.address_book import AddressBook
from chains.codec import address_from_hex20, transaction_id
from chains.evm.erc20 import TRANSFER_TOPIC, BlockHeader, TransferLog, decode_header, transfers_to
from chains.presets import ChainConfig
from chains.rpc import RpcClient, RpcError, RpcResponseError
from pool import ledger
from pool.clock import utc_now
from pool.db import Database
from pool.repository import chain_state
from pool.repository.alerts import fire_alert
from pool.repository.chain_state import Cursor, StoredBlock
from pool.repository.ledger import pending_up_to

log = logging.getLogger("addrpool.watcher")
HEADER_BATCH = 500
WALK_BACK_BATCH = 16


class ChainMoved(RpcError):
    """The node's answers disagree with each other: its chain changed while we read it."""


class RangeTooLarge(RpcError):
    """The node refuses a log query over this many blocks (or with this many results)."""


class SuspectNode(RpcError):
    """No logs at all where a healthy node must have some (a node without its log index)."""


# How nodes word "split your range": geth, erigon, Alchemy, Infura, QuickNode, BSC, java-tron.
_RANGE_ERROR = re.compile(
    r"too many|more than \d+ results|block range|range (is )?too (large|wide|big)"
    r"|exceed(s|ed)? .*range|limit exceeded|response size|max(imum)? .*results",
    re.IGNORECASE,
)
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


@dataclass(frozen=True, slots=True)
class Range:
    start: int
    end: int
    head: int


class ChainWatcher:
    def __init__(
        self, chain: ChainConfig, db: Database, book: AddressBook, client: RpcClient
    ) -> None:
        self.chain = chain
        self.db = db
        self.book = book
        self.client = client
        self._tokens = {token.hex20: token for token in chain.tokens}
        self._to_text = address_from_hex20(chain.protocol)
        self._recorded_head: int | None = None
        self.block_range = chain.max_block_range
        self._good_ranges = 0

    def use(self, client: RpcClient) -> None:
        """Serve the next poll from this endpoint (the runner picks it; see chains.endpoints)."""
        if client is not self.client:
            self.client = client
            self._recorded_head = None

    async def poll(self, stop: asyncio.Event | None = None) -> PollReport:
        report = PollReport()
        await self.book.refresh(self.db)
        head = await self._head()
        cursor = await self._cursor(head)
        await self._record_head(head)
        if not await self._tip_is_canonical(cursor):
            cursor = await self._roll_back(cursor, report)
        while cursor.block_number < head and not (stop and stop.is_set()):
            end = min(head, cursor.block_number + self.block_range)
            try:
                cursor = await self._scan(cursor, Range(cursor.block_number + 1, end, head), report)
                self._range_worked()
            except RangeTooLarge as exc:
                self._shrink_range(end - cursor.block_number, exc)
                continue
            except ChainMoved as exc:
                log.warning(
                    "chain moved during a scan; checking for a reorg",
                    extra=self.log_context(error=str(exc)),
                )
                cursor = await self._roll_back(cursor, report)
                break
            await self._confirm(head, report)
        await self._confirm(head, report)
        report.head, report.cursor = head, cursor.block_number
        return report

    # -- head and cursor ------------------------------------------------------------------

    async def _head(self) -> int:
        return int(await self.client.call("eth_blockNumber", []), 16)

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
        start = await self._header(number) if number >= 0 else None
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
        async with self.db.write() as conn:
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
        async with self.db.write() as conn:
            await chain_state.record_head(
                conn,
                chain_id=self.chain.chain_id,
                head=head,
                confirmations=self.chain.confirmations,
                endpoint=self.client.endpoint,
                now=utc_now(),
            )
        self._recorded_head = head

    # -- reading the chain ----------------------------------------------------------------

    async def _header(self, number: int) -> BlockHeader:
        return (await self._headers([number]))[number]

    async def _headers(self, numbers: Sequence[int]) -> dict[int, BlockHeader]:
        """Headers by height, batched; a height the node does not have is an error."""
        headers: dict[int, BlockHeader] = {}
        for i in range(0, len(numbers), HEADER_BATCH):
            chunk = numbers[i : i + HEADER_BATCH]
            calls = [("eth_getBlockByNumber", [hex(n), False]) for n in chunk]
            for number, block in zip(chunk, await self.client.batch(calls), strict=True):
                if block is None:
                    raise ChainMoved(self.client.endpoint, f"block {number} is unknown to the node")
                headers[number] = decode_header(block)
        return headers

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

    async def _logs(self, start: int, end: int) -> list[dict[str, Any]]:
        query = {
            "fromBlock": hex(start),
            "toBlock": hex(end),
            "address": ["0x" + token.hex20 for token in self.chain.tokens],
            "topics": [TRANSFER_TOPIC],
        }
        try:
            logs = await self.client.call("eth_getLogs", [query])
        except RpcResponseError as exc:
            if _RANGE_ERROR.search(exc.rpc_message):
                raise RangeTooLarge(self.client.endpoint, exc.rpc_message) from exc
            raise
        if not isinstance(logs, list):
            raise RpcError(self.client.endpoint, "eth_getLogs did not return a list")
        quiet_limit = self.chain.suspect_empty_after
        if not logs and quiet_limit is not None and end - start + 1 >= quiet_limit:
            # java-tron without its log index answers a filtered query with [] (DESIGN.md).
            raise SuspectNode(
                self.client.endpoint, f"no token logs in {end - start + 1} blocks from {start}"
            )
        return logs

    # -- scanning -------------------------------------------------------------------------

    async def _scan(self, cursor: Cursor, span: Range, report: PollReport) -> Cursor:
        logs = await self._logs(span.start, span.end)
        found = transfers_to(logs, self.book.hex20s)
        headers = await self._headers(self._heights_to_check(span))
        self._check_links(cursor, headers)
        self._check_logs_match(found, headers)
        if self.chain.check_receipts:
            found = await self._succeeded_only(found)
        end_hash = headers[span.end].hash
        async with self.db.write() as conn:
            changes = await ledger.record_transfers(
                conn,
                chain_id=self.chain.chain_id,
                protocol=self.chain.protocol,
                transfers=[self._observed(t) for t in found],
                now=utc_now(),
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
            )
        report.blocks += span.end - span.start + 1
        report.deposits += changes.recorded + changes.reopened
        # A quiet block a second is not news; a deposit or a catch-up range is.
        quiet = not found and span.end == span.start
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "range scanned",
            extra=self.log_context(
                block_from=span.start, block_to=span.end, logs=len(logs), deposits=changes.recorded
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

        Below the window a reorg is beyond what we promise to follow (DESIGN.md, Invariant 7),
        so a catch-up scan there does not pay for a header per block.
        """
        first_in_window = max(span.start, span.head - self.chain.window + 1)
        return sorted({*range(first_in_window, span.end + 1), span.end})

    def _check_links(self, cursor: Cursor, headers: dict[int, BlockHeader]) -> None:
        """Parent hashes chain the new headers to each other and to our stored tip."""
        previous: BlockHeader | None = None
        for number in sorted(headers):
            header = headers[number]
            if number == cursor.block_number + 1 and header.parent_hash != cursor.block_hash:
                raise ChainMoved(self.client.endpoint, f"block {number} does not extend our tip")
            if (
                previous is not None
                and previous.number + 1 == number
                and header.parent_hash != previous.hash
            ):
                raise ChainMoved(
                    self.client.endpoint, f"block {number} does not extend {previous.number}"
                )
            previous = header

    def _check_logs_match(
        self, found: Iterable[TransferLog], headers: dict[int, BlockHeader]
    ) -> None:
        for transfer in found:
            header = headers.get(transfer.block_number)
            if header is not None and header.hash != transfer.block_hash:
                raise ChainMoved(
                    self.client.endpoint, f"logs of block {transfer.block_number} are stale"
                )

    async def _succeeded_only(self, found: list[TransferLog]) -> list[TransferLog]:
        """Drop logs of failed transactions: Tron keeps them (DESIGN.md, Tron quirks)."""
        tx_hashes = sorted({t.tx_hash for t in found})
        receipts = await self.client.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        succeeded = set()
        for tx_hash, receipt in zip(tx_hashes, receipts, strict=True):
            if receipt is None:
                raise ChainMoved(self.client.endpoint, f"no receipt for {tx_hash}")
            if receipt.get("status") == "0x1":
                succeeded.add(tx_hash)
        return [t for t in found if t.tx_hash in succeeded]

    def _observed(self, transfer: TransferLog) -> ledger.ObservedTransfer:
        token = self._tokens[transfer.token_hex20]
        return ledger.ObservedTransfer(
            tx_hash=transaction_id(self.chain.protocol, transfer.tx_hash),
            log_index=transfer.log_index,
            block_number=transfer.block_number,
            block_hash=transfer.block_hash,
            from_address=self._to_text(transfer.from_hex20),
            to_hex20=transfer.to_hex20,
            token_contract=token.contract,
            currency=token.symbol,
            decimals=token.decimals,
            amount=transfer.amount,
            min_amount=token.min_amount,
        )

    # -- confirmations --------------------------------------------------------------------

    async def _confirm(self, head: int, report: PollReport) -> None:
        """Confirm pending deposits at the required depth whose block is still canonical."""
        deepest = head - self.chain.confirmations + 1
        async with self.db.read() as conn:
            ready = await pending_up_to(conn, chain_id=self.chain.chain_id, block_number=deepest)
        if not ready:
            return
        headers = await self._headers(sorted({d.block_number for d in ready}))
        # A deposit whose block hash changed is left pending: the tip check finds the reorg.
        verified = {
            d.id: d.block_hash for d in ready if headers[d.block_number].hash == d.block_hash
        }
        if not verified:
            return
        async with self.db.write() as conn:
            changes = await ledger.confirm_deposits(conn, verified=verified, now=utc_now())
        report.confirmed += changes.confirmed

    # -- reorganisations ------------------------------------------------------------------

    async def _tip_is_canonical(self, cursor: Cursor) -> bool:
        if cursor.block_number < 0:
            return True
        try:
            return (await self._header(cursor.block_number)).hash == cursor.block_hash
        except ChainMoved:
            return False  # the node no longer has our tip: its chain got shorter

    async def _roll_back(self, cursor: Cursor, report: PollReport) -> Cursor:
        """Walk back to the common ancestor, revert what was above it, resume from there."""
        ancestor = await self._common_ancestor(cursor)
        now = utc_now()
        async with self.db.write() as conn:
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
                await self._alert_deep_reorg(conn, cursor, ancestor, now)
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

    async def _common_ancestor(self, cursor: Cursor) -> Ancestor:
        async with self.db.read() as conn:
            stored = await chain_state.stored_blocks(conn, self.chain.chain_id)
        candidates = [b for b in stored if b.number <= cursor.block_number]
        if not candidates or candidates[0].number != cursor.block_number:
            candidates.insert(0, StoredBlock(cursor.block_number, cursor.block_hash, ""))
        for i in range(0, len(candidates), WALK_BACK_BATCH):
            chunk = candidates[i : i + WALK_BACK_BATCH]
            canonical = await self._canonical_hashes([b.number for b in chunk])
            for block in chunk:
                if canonical.get(block.number) == block.hash:
                    return Ancestor(block.number, block.hash, deep=False)
        # Nothing we kept is canonical any more. With a full window that is a reorg deeper than
        # we promise to follow (alert); with a young one, just older than what we kept so far.
        # Either way rescan from below it: if that is not canonical either, the next poll's tip
        # check walks further back.
        deep = len(candidates) >= self.chain.window
        lowest = candidates[-1].number - 1
        if lowest < 0:
            return Ancestor(-1, GENESIS_PARENT, deep=deep)
        return Ancestor(lowest, (await self._header(lowest)).hash, deep=deep)

    async def _canonical_hashes(self, numbers: list[int]) -> dict[int, str]:
        answers = await self.client.batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        )
        return {
            n: decode_header(b).hash for n, b in zip(numbers, answers, strict=True) if b is not None
        }

    async def _alert_deep_reorg(
        self, conn: AsyncConnection, cursor: Cursor, ancestor: Ancestor, now: datetime
    ) -> None:
        await fire_alert(
            conn,
            kind="deep_reorg",
            subject=f"deep_reorg:{self.chain.chain_id}",
            severity="critical",
            value=str(cursor.block_number - ancestor.number),
            details={
                "chainId": self.chain.chain_id,
                "fromBlock": cursor.block_number,
                "toBlock": ancestor.number,
            },
            now=now,
        )

    def log_context(self, **fields: object) -> dict[str, object]:
        return {"chain": self.chain.chain_id, "endpoint": self.client.endpoint, **fields}


@dataclass(frozen=True, slots=True)
class Ancestor:
    number: int
    hash: str
    deep: bool


GENESIS_PARENT = "0x" + "0" * 64
