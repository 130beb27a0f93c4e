"""Reading one chain from one endpoint: heads, headers, token logs, receipts.

Shared by the watcher and `addrpool rescan`. Errors say what kind of trouble it was: the
node's chain moved under us (a reorg to look for), a log range too large (split it), a node
that answers with nothing where there must be something (set it aside), or plain RPC failure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from chains.codec import address_from_hex20, transaction_id
from chains.evm import native
from chains.evm.erc20 import (
    TRANSFER_TOPIC,
    BlockHeader,
    Recipients,
    TransferLog,
    decode_header,
    recipients_of,
    transfers_to,
)
from chains.evm.native import NativeTransfer, TraceMismatch
from chains.presets import ChainConfig
from chains.rpc import RpcClient, RpcError, RpcResponseError
from pool.deposits.new_rows import ObservedTransfer
from pool.kit.config_sections import Tracer
from pool.vocabulary import NATIVE_CONTRACT

HEADER_BATCH = 500
_Found = TypeVar("_Found", TransferLog, NativeTransfer)
# Full blocks and their traces are heavy (a busy block's trace runs to megabytes): fewer a request.
NATIVE_BATCH = 20


def trace_call(tracer: Tracer, number: int) -> tuple[str, list[Any]]:
    """What a tracer is asked for a block (chains.evm.native decodes the answers)."""
    if tracer == "debug":
        return "debug_traceBlockByNumber", [hex(number), {"tracer": "callTracer"}]
    return "trace_block", [hex(number)]


_INTERNAL = {
    "debug": native.internal_from_call_tracer,
    "trace": native.internal_from_trace_block,
}


def block_moment(header: BlockHeader) -> datetime:
    return datetime.fromtimestamp(header.timestamp, UTC)


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


class ChainReader:
    def __init__(self, chain: ChainConfig, client: RpcClient) -> None:
        self.chain = chain
        self.client = client
        self._tokens = {token.hex20: token for token in chain.tokens}
        # Senders repeat (exchanges' hot wallets), and an EIP-55 checksum costs a keccak.
        self._to_text = functools.lru_cache(maxsize=16_384)(address_from_hex20(chain.protocol))

    async def head(self) -> int:
        return int(await self.client.call("eth_blockNumber", []), 16)

    async def transfers(
        self, start: int, end: int, recipients: Recipients
    ) -> tuple[int, list[TransferLog]]:
        """(logs read, the Transfers to `recipients`) in [start, end], failed transactions out."""
        if not self.chain.tokens:  # an empty address filter would ask for every log there is
            return 0, []
        logs = await self.logs(start, end)
        found = transfers_to(logs, recipients.matching(recipients_of(logs)))
        if self.chain.check_receipts and found:
            found = await self.succeeded_only(found)
        return len(logs), found

    async def header(self, number: int) -> BlockHeader:
        return (await self.headers([number]))[number]

    async def headers(self, numbers: Sequence[int]) -> dict[int, BlockHeader]:
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

    async def logs(self, start: int, end: int) -> list[dict[str, Any]]:
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
            # java-tron without its log index answers a filtered query with [] (docs/design.md).
            raise SuspectNode(
                self.client.endpoint, f"no token logs in {end - start + 1} blocks from {start}"
            )
        return logs

    async def native_transfers(
        self, start: int, end: int, recipients: Container[str], tracer: Tracer
    ) -> tuple[dict[int, BlockHeader], list[NativeTransfer]]:
        """The chain's coin sent to `recipients` in [start, end]: transactions' own value (those
        that succeeded) and, unless `tracer` is "none", value sent inside them; with the
        header of every block read."""
        headers: dict[int, BlockHeader] = {}
        found: list[NativeTransfer] = []
        for first in range(start, end + 1, NATIVE_BATCH):
            numbers = list(range(first, min(end, first + NATIVE_BATCH - 1) + 1))
            calls = [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
            if tracer != "none":
                calls += [trace_call(tracer, n) for n in numbers]
            answers = await self.client.batch(calls)
            top: list[NativeTransfer] = []
            for i, number in enumerate(numbers):
                block = answers[i]
                if block is None:
                    raise ChainMoved(self.client.endpoint, f"block {number} is unknown to the node")
                headers[number] = decode_header(block)
                top += native.top_level_to(block, recipients)
                if tracer != "none":
                    found += self._internal(tracer, block, answers[len(numbers) + i], recipients)
            found += await self.succeeded_only(top) if top else []
        return headers, found

    def _internal(
        self, tracer: Tracer, block: dict[str, Any], traces: Any, recipients: Container[str]
    ) -> list[NativeTransfer]:
        if not isinstance(traces, list):
            raise RpcError(self.client.endpoint, f"{tracer} trace of a block is not a list")
        try:
            return _INTERNAL[tracer](block, traces, recipients)
        except TraceMismatch as exc:
            raise ChainMoved(self.client.endpoint, str(exc)) from exc

    async def probe_tracer(self) -> Tracer:
        """Which trace API the node answers: the call tracer, `trace_block`, or neither."""
        head = await self.head()
        tracers: tuple[Tracer, ...] = ("debug", "trace")
        for tracer in tracers:
            method, params = trace_call(tracer, head)
            try:
                await self.client.call(method, params)
            except RpcResponseError:
                continue
            return tracer
        return "none"

    def check_links(self, tip: tuple[int, str], headers: dict[int, BlockHeader]) -> None:
        """Parent hashes chain the new headers to each other and to our stored tip."""
        previous: BlockHeader | None = None
        for number in sorted(headers):
            header = headers[number]
            if number == tip[0] + 1 and header.parent_hash != tip[1]:
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

    def check_logs_match(
        self, found: Iterable[TransferLog | NativeTransfer], headers: dict[int, BlockHeader]
    ) -> None:
        for transfer in found:
            header = headers.get(transfer.block_number)
            if header is not None and header.hash != transfer.block_hash:
                raise ChainMoved(
                    self.client.endpoint, f"logs of block {transfer.block_number} are stale"
                )

    async def succeeded_only(self, found: list[_Found]) -> list[_Found]:
        """Drop transfers of failed transactions: Tron keeps their logs (docs/design.md, Chains);
        a failed transaction's value never moved."""
        tx_hashes = sorted({t.tx_hash for t in found})
        receipts = await self.client.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        succeeded = set()
        for tx_hash, receipt in zip(tx_hashes, receipts, strict=True):
            if receipt is None:
                raise ChainMoved(self.client.endpoint, f"no receipt for {tx_hash}")
            if receipt.get("status") == "0x1":
                succeeded.add(tx_hash)
        return [t for t in found if t.tx_hash in succeeded]

    def observed(
        self, transfer: TransferLog | NativeTransfer, headers: Mapping[int, BlockHeader]
    ) -> ObservedTransfer:
        """The ledger's view of a transfer; `headers` hold its block's (its timestamp decides
        whether it counts for an order: docs/design.md, Orders)."""
        if isinstance(transfer, NativeTransfer):
            return self._observed_native(transfer, headers)
        token = self._tokens[transfer.token_hex20]
        return ObservedTransfer(
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
            block_time=block_moment(headers[transfer.block_number]),
        )

    def _observed_native(
        self, transfer: NativeTransfer, headers: Mapping[int, BlockHeader]
    ) -> ObservedTransfer:
        coin = self.chain.native
        if coin is None:  # pragma: no cover - native transfers are read only when it is set
            raise RuntimeError(f"{self.chain.chain_id}: a native transfer with native off")
        return ObservedTransfer(
            tx_hash=transaction_id(self.chain.protocol, transfer.tx_hash),
            log_index=-1,
            trace_position=transfer.position,
            block_number=transfer.block_number,
            block_hash=transfer.block_hash,
            from_address=self._to_text(transfer.from_hex20),
            to_hex20=transfer.to_hex20,
            token_contract=NATIVE_CONTRACT,
            currency=coin.symbol,
            decimals=coin.decimals,
            amount=transfer.amount,
            min_amount=coin.min_amount,
            block_time=block_moment(headers[transfer.block_number]),
        )

    async def canonical_hashes(self, numbers: list[int]) -> dict[int, str]:
        answers = await self.client.batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        )
        return {
            n: decode_header(b).hash for n, b in zip(numbers, answers, strict=True) if b is not None
        }
