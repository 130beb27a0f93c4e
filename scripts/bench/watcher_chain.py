"""The watcher benchmark's chain: built on a local anvil, then read by the two other strategies.

Building: automine off, `batchTransfer` transactions of many recipients (one Transfer log
each) spread evenly over the blocks, empty stretches mined in one `anvil_mine`. A fixed share
of the logs goes to pool addresses, the rest to fresh random addresses.

Reading, for comparison with the watcher's one filter per block range:
- the per-recipient baseline: the watched addresses in the `to` topic, 20 per `eth_getLogs`
  (BTCPay's USDt plugin does this), so the request count grows with the number watched;
- web3's formatted `eth.get_logs`, for context (what chains/rpc.py avoids).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chains.evm.erc20 import TRANSFER_TOPIC, transfers_to
from chains.rpc import RpcClient
from scripts.devnet import anvil

FUNDS = 10**15  # a billion tokens of 6 decimals
TOKEN_UNIT = 10**6
ADDRESSES_PER_REQUEST = 20  # the per-recipient baseline's topic list
TOPIC_PAD = "0x" + "0" * 24


@dataclass(frozen=True, slots=True)
class ChainFacts:
    url: str
    token: str  # checksummed
    sender: str
    start_block: int  # first block of the built stretch
    head: int  # last block of the built stretch
    logs: int  # Transfer logs in [start_block, head]
    pool_logs: int  # of which to pool addresses
    transactions: int
    build_seconds: float

    @property
    def blocks(self) -> int:
        return self.head - self.start_block + 1


@dataclass(frozen=True, slots=True)
class ScanResult:
    seconds: float
    requests: int
    logs: int  # logs the node returned
    matched: int  # of which to a watched address
    chain_logs: int  # Transfer logs of the scanned blocks, returned or not

    @property
    def chain_logs_per_second(self) -> float:
        return self.chain_logs / self.seconds


def deploy_usdt(url: str) -> tuple[str, str]:
    """Test USDT (6 decimals) with funds on the first dev account; (token, sender)."""
    sender = anvil.accounts(url)[0]
    token = anvil.deploy_token(url, name="Tether USD", symbol="USDT", decimals=6, sender=sender)
    anvil.mint(url, token, sender, FUNDS, sender)
    return token, sender


def recipients_plan(
    rng: random.Random,
    *,
    transfers: int,
    pool_share: float,
    pool_recipients: Sequence[str],
    others: int,
) -> list[str]:
    """One recipient per log: `pool_share` of them cycle through the pool recipients, the rest
    are drawn from `others` random non-pool addresses.

    Drawn from a fixed set, not fresh each time: anvil's cost to mine a block grows with the number
    of token holders (docs/performance.md). The watcher's work per log is the same either way: one
    slice and one set look-up.
    """
    pool_count = round(transfers * pool_share)
    plan = [pool_recipients[i % len(pool_recipients)] for i in range(pool_count)]
    strangers = ["0x" + rng.randbytes(20).hex() for _ in range(others)]
    plan += [rng.choice(strangers) for _ in range(transfers - pool_count)]
    rng.shuffle(plan)
    return plan


def build_chain(
    url: str,
    token: str,
    sender: str,
    plan: Sequence[str],
    *,
    blocks: int,
    per_tx: int,
    rng: random.Random,
) -> tuple[int, int, float]:
    """Mine `blocks` blocks carrying `plan`'s transfers; (first block, last block, seconds)."""
    started = time.perf_counter()
    anvil.rpc(url, "evm_setAutomine", [False])
    first = anvil.block_number(url) + 1
    batches = [plan[i : i + per_tx] for i in range(0, len(plan), per_tx)]
    by_block: dict[int, list[Sequence[str]]] = {}
    for index, batch in enumerate(batches):
        by_block.setdefault(index * blocks // len(batches), []).append(batch)
    empty = 0
    for offset in range(blocks):
        if offset not in by_block:
            empty += 1
            continue
        if empty:
            anvil.mine(url, empty)
            empty = 0
        for batch in by_block[offset]:
            amounts = [rng.randint(1, 100) * TOKEN_UNIT for _ in batch]
            anvil.batch_transfer(url, token, batch, amounts, sender, wait=False)
        anvil.mine(url, 1)
    if empty:
        anvil.mine(url, empty)
    head = anvil.block_number(url)
    if head != first + blocks - 1:
        raise RuntimeError(f"expected head {first + blocks - 1}, node says {head}")
    return first, head, time.perf_counter() - started


def block_ranges(start: int, end: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(end, s + size - 1)) for s in range(start, end + 1, size)]


async def per_recipient_scan(
    chain: ChainFacts, watched: Sequence[str], *, block_range: int, concurrency: int = 1
) -> ScanResult:
    """The baseline: every watched address in the `to` topic, 20 per request."""
    client = RpcClient(chain.url, timeout=60.0)
    groups = [
        watched[i : i + ADDRESSES_PER_REQUEST]
        for i in range(0, len(watched), ADDRESSES_PER_REQUEST)
    ]
    queries = [
        {
            "fromBlock": hex(start),
            "toBlock": hex(end),
            "address": chain.token.lower(),
            "topics": [TRANSFER_TOPIC, None, [TOPIC_PAD + h for h in group]],
        }
        for start, end in block_ranges(chain.start_block, chain.head, block_range)
        for group in groups
    ]
    recipients = set(watched)
    gate = asyncio.Semaphore(concurrency)

    async def one(query: dict[str, Any]) -> tuple[int, int]:
        async with gate:
            logs = await client.call("eth_getLogs", [query])
        return len(logs), len(transfers_to(logs, recipients))

    started = time.perf_counter()
    counts = await asyncio.gather(*(one(q) for q in queries))
    seconds = time.perf_counter() - started
    await client.close()
    returned = sum(c[0] for c in counts)
    matched = sum(c[1] for c in counts)
    return ScanResult(seconds, len(queries), returned, matched, chain.logs)


def web3_scan(chain: ChainFacts, recipients: set[str], *, block_range: int) -> ScanResult:
    """web3.py's formatted `eth.get_logs` over the same ranges, matched the same way."""
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(chain.url, request_kwargs={"timeout": 60}))
    ranges = block_ranges(chain.start_block, chain.head, block_range)
    returned = matched = 0
    started = time.perf_counter()
    for start, end in ranges:
        logs = w3.eth.get_logs(
            {
                "fromBlock": start,
                "toBlock": end,
                "address": w3.to_checksum_address(chain.token),
                "topics": [TRANSFER_TOPIC],
            }
        )
        returned += len(logs)
        matched += sum(1 for entry in logs if entry["topics"][2][-20:].hex() in recipients)
    seconds = time.perf_counter() - started
    return ScanResult(seconds, len(ranges), returned, matched, chain.logs)
