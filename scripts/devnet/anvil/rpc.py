"""JSON-RPC to the devnet: blocks, mining, snapshots, receipts and anvil's reorgs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
from eth_utils.address import to_checksum_address

RPC_TIMEOUT = 10.0
RECEIPT_DEADLINE = 30.0
POLL_INTERVAL = 0.02
# An explicit gas limit where anvil's own estimate is no use: a transfer meant to revert (the
# estimate fails; anvil 1.7.1 then happens to fall back to the block gas limit, other nodes
# refuse the transaction) and a new request given to anvil_reorg (estimated against the old
# head's state, so too low where a balance was zero at the common ancestor: the replacement
# then runs out of gas, measured). Enough for any TestToken call.
EXPLICIT_GAS = 1_000_000


class DevnetError(RuntimeError):
    """The devnet could not do what was asked."""


class RpcError(DevnetError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, error: Mapping[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method}: JSON-RPC error {self.code}: {error.get('message')}")


@dataclass(frozen=True)
class Receipt:
    transaction_hash: str
    block_number: int
    block_hash: str
    status: int
    logs: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Receipt:
        return cls(
            transaction_hash=raw["transactionHash"],
            block_number=int(raw["blockNumber"], 16),
            block_hash=raw["blockHash"],
            status=int(raw["status"], 16),
            logs=tuple(raw["logs"]),
            raw=raw,
        )


# -- JSON-RPC --------------------------------------------------------------------------------


def rpc(url: str, method: str, params: Sequence[Any] = ()) -> Any:
    """One JSON-RPC call; an error object raises `RpcError`."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    response = _client().post(url, json=body)
    try:
        reply = response.json()
    except ValueError:
        response.raise_for_status()
        raise DevnetError(f"{method}: not a JSON-RPC reply: {response.text[:200]!r}") from None
    if reply.get("error") is not None:
        raise RpcError(method, reply["error"])
    return reply["result"]


@cache
def _client() -> httpx.Client:
    # One client for the process: a new one per call builds an SSL context, slower than the
    # call itself (docs/performance.md). trust_env=False keeps loopback traffic off any env proxy.
    return httpx.Client(timeout=RPC_TIMEOUT, trust_env=False)


def accounts(url: str) -> list[str]:
    return [to_checksum_address(account) for account in rpc(url, "eth_accounts")]


def block_number(url: str) -> int:
    return int(rpc(url, "eth_blockNumber"), 16)


def block_hash(url: str, number: int) -> str:
    block = rpc(url, "eth_getBlockByNumber", [hex(number), False])
    if block is None:
        raise DevnetError(f"no block {number}")
    return str(block["hash"])


def mine(url: str, blocks: int = 1) -> None:
    rpc(url, "anvil_mine", [hex(blocks)])


def snapshot(url: str) -> str:
    return str(rpc(url, "evm_snapshot"))


def revert(url: str, snapshot_id: str) -> None:
    """Back to a snapshot; anvil forgets it (and every later one) once reverted to."""
    if rpc(url, "evm_revert", [snapshot_id]) is not True:
        raise DevnetError(f"no snapshot {snapshot_id}")


def receipt(url: str, tx_hash: str, *, deadline: float = RECEIPT_DEADLINE) -> Receipt:
    """The receipt once the transaction is mined (polled until `deadline` seconds)."""
    give_up = time.monotonic() + deadline
    while (raw := rpc(url, "eth_getTransactionReceipt", [tx_hash])) is None:
        if time.monotonic() > give_up:
            raise DevnetError(f"{tx_hash} not mined within {deadline}s")
        time.sleep(POLL_INTERVAL)
    return Receipt.from_json(raw)


def reorg(
    url: str, depth: int, transactions: Sequence[tuple[str | Mapping[str, Any], int]] = ()
) -> None:
    """Replace the top `depth` blocks with `depth` new ones; the head number stays the same.

    Each pair puts a transaction into the new block at `offset` (0 is the first block above the
    common ancestor, up to depth - 1). A hash names a mined transaction, replayed from its signed
    bytes so it keeps its hash; a mapping is a new request anvil signs with the next nonce.
    Every transaction of the replaced blocks that is not listed is gone (not back in the pool).
    The new blocks all carry the common ancestor's timestamp, and the node's clock goes back to
    it: later blocks are stamped that much behind the wall clock.
    """
    if depth < 1:
        raise ValueError("a reorg replaces at least one block")
    pairs = [[_reorg_transaction(url, tx), offset] for tx, offset in transactions]
    common = block_number(url) - depth
    rpc(url, "anvil_reorg", [depth, pairs])
    for tx, offset in transactions:
        if isinstance(tx, str):
            _require_replayed(url, tx, common + 1 + offset)


def _reorg_transaction(url: str, tx: str | Mapping[str, Any]) -> str | dict[str, Any]:
    if not isinstance(tx, str):
        return {"gas": hex(EXPLICIT_GAS), **tx}
    raw = rpc(url, "eth_getRawTransactionByHash", [tx])
    if raw is None:
        raise DevnetError(f"no transaction {tx}")
    return str(raw)


def _require_replayed(url: str, tx_hash: str, number: int) -> None:
    # A replayed transaction keeps its nonce, and anvil silently leaves out one that no longer
    # fits the sender's nonce sequence (an earlier transaction of the sender was dropped, or
    # listed after it): say so rather than leave a test to wonder.
    raw = rpc(url, "eth_getTransactionReceipt", [tx_hash])
    if raw is None or int(raw["blockNumber"], 16) != number:
        found = "nowhere" if raw is None else f"in block {int(raw['blockNumber'], 16)}"
        raise DevnetError(
            f"anvil_reorg did not re-include {tx_hash} in block {number} ({found}): replay each "
            "sender's transactions in nonce order, without leaving out an earlier one"
        )
