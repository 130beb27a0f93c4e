"""Pure decoding of ERC-20 Transfer logs and block headers, from the node's raw JSON.

The hot path: a catch-up scan reads tens of thousands of logs a second, nearly all of them to
addresses that are not ours, so a log is dropped after one slice and one set look-up.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
# A topic is "0x" + 64 hex; an address is its last 20 bytes.
_ADDRESS_IN_TOPIC = slice(26, None)

log = logging.getLogger("addrpool.erc20")


@dataclass(frozen=True, slots=True)
class TransferLog:
    token_hex20: str
    from_hex20: str
    to_hex20: str
    amount: int
    tx_hash: str  # 0x + 64 lower-case hex, as the node gives it
    log_index: int
    block_number: int
    block_hash: str


@dataclass(frozen=True, slots=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


def decode_header(block: dict[str, Any]) -> BlockHeader:
    return BlockHeader(
        number=int(block["number"], 16),
        hash=block["hash"].lower(),
        parent_hash=block["parentHash"].lower(),
        timestamp=int(block["timestamp"], 16),
    )


class Recipients(Protocol):
    """What a range's recipients are matched against: the watcher's address book."""

    def matching(self, hex20s: Iterable[str]) -> set[str]: ...


def recipients_of(logs: Iterable[dict[str, Any]]) -> set[str]:
    """The distinct recipients (lower-case 40-hex) of the logs that may be ERC-20 Transfers:
    a range's worth, to be matched against the pool at once."""
    return {
        entry["topics"][2][_ADDRESS_IN_TOPIC].lower() for entry in logs if len(entry["topics"]) == 3
    }


def transfers_to(logs: Iterable[dict[str, Any]], recipients: Container[str]) -> list[TransferLog]:
    """The Transfer logs whose recipient is in `recipients` (lower-case 40-hex)."""
    found: list[TransferLog] = []
    for entry in logs:
        topics = entry["topics"]
        # ERC-721 Transfer has the same topic with 4 topics; ours have exactly 3.
        if len(topics) != 3:
            continue
        recipient = topics[2][_ADDRESS_IN_TOPIC].lower()
        if recipient not in recipients or topics[0].lower() != TRANSFER_TOPIC:
            continue
        # `removed: true` comes from filters replayed across a reorg; never a deposit.
        if entry.get("removed"):
            continue
        transfer = _decode(entry, topics, recipient)
        if transfer is not None:
            found.append(transfer)
    return found


def _decode(entry: dict[str, Any], topics: list[str], recipient: str) -> TransferLog | None:
    try:
        data = entry["data"]
        return TransferLog(
            token_hex20=entry["address"][2:].lower(),
            from_hex20=topics[1][_ADDRESS_IN_TOPIC].lower(),
            to_hex20=recipient,
            amount=int(data, 16) if len(data) > 2 else 0,
            tx_hash=entry["transactionHash"].lower(),
            log_index=int(entry["logIndex"], 16),
            block_number=int(entry["blockNumber"], 16),
            block_hash=entry["blockHash"].lower(),
        )
    except (KeyError, ValueError, TypeError):
        # A configured token contract emitting a malformed Transfer is not a transfer of value.
        log.error("undecodable Transfer log", extra={"log": str(entry)[:500]})
        return None
