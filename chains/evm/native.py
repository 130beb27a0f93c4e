"""Pure decoding of a chain's own coin moving to pool addresses, from the node's raw JSON.

Two ways in: a transaction's own value (top-level, in the full block) and value sent by a
contract while the transaction runs (internal, only in a trace of the block). A deposit's
identity is (chain, transaction, trace position): `tx` is the transaction's own value, `tx.0.1`
the second call made by the first call the transaction made (the trace address of
`trace_block`, which the call tracer's nesting gives too), so a rescan or another tracer
records it once (docs/design.md, Native coins).

Only CALL, CREATE and SELFDESTRUCT frames carry value of their own: DELEGATECALL and STATICCALL
are skipped (a delegate call shows its caller's value, which did not move), so is CALLCODE
(value sent to oneself). A SELFDESTRUCT pays the contract's whole balance to its beneficiary —
since Cancun it deletes the code only in the transaction that created it, but it pays either
way. A frame that failed undid everything below it: the whole subtree is skipped.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

TOP_LEVEL = "tx"
_VALUE_FRAMES = frozenset({"CALL", "CREATE", "CREATE2", "SELFDESTRUCT"})  # call tracer's types
_VALUE_CALLS = frozenset({"call"})  # trace_block's callType of a "call" action


class TraceMismatch(ValueError):
    """A block's trace does not belong to the block read (the chain moved between the calls)."""


@dataclass(frozen=True, slots=True)
class NativeTransfer:
    tx_hash: str  # 0x + 64 lower-case hex
    position: str  # "tx", or "tx.<i>.<j>…" for a frame inside the transaction
    from_hex20: str
    to_hex20: str
    amount: int
    block_number: int
    block_hash: str

    @property
    def internal(self) -> bool:
        return self.position != TOP_LEVEL


def position_of(trace_address: Sequence[int]) -> str:
    return ".".join([TOP_LEVEL, *map(str, trace_address)])


def top_level_to(block: dict[str, Any], recipients: Container[str]) -> list[NativeTransfer]:
    """Transactions of a full block sending value to `recipients`; whether they succeeded is
    the receipt's to say (the caller asks)."""
    found: list[NativeTransfer] = []
    number, block_hash = int(block["number"], 16), block["hash"].lower()
    for tx in block["transactions"]:
        to = tx.get("to")
        if not to or tx["value"] in ("0x0", "0x"):
            continue
        recipient = to[2:].lower()
        if recipient in recipients:
            found.append(
                NativeTransfer(
                    tx["hash"].lower(),
                    TOP_LEVEL,
                    tx["from"][2:].lower(),
                    recipient,
                    int(tx["value"], 16),
                    number,
                    block_hash,
                )
            )
    return found


def internal_from_call_tracer(
    block: dict[str, Any], traces: list[dict[str, Any]], recipients: Container[str]
) -> list[NativeTransfer]:
    """Value-bearing frames below the top of each transaction, from `debug_traceBlockByNumber`
    with `{"tracer": "callTracer"}`: one nested trace per transaction, in block order."""
    txs = block["transactions"]
    number, block_hash = int(block["number"], 16), block["hash"].lower()
    if len(traces) != len(txs):
        raise TraceMismatch(f"block {number}: {len(traces)} traces for {len(txs)} transactions")
    found: list[NativeTransfer] = []
    for tx, item in zip(txs, traces, strict=True):
        tx_hash = tx["hash"].lower()
        if "txHash" in item and str(item["txHash"]).lower() != tx_hash:
            raise TraceMismatch(f"block {number}: trace of {item['txHash']} where {tx_hash} is")
        root = item.get("result")
        if not isinstance(root, dict):
            raise TraceMismatch(f"block {number}: no call trace for {tx_hash}: {item.get('error')}")
        for address, frame in _succeeded_children(root, ()):
            value = frame.get("value")
            to = frame.get("to")
            if not value or not to or frame.get("type") not in _VALUE_FRAMES:
                continue
            amount = int(value, 16)
            recipient = to[2:].lower()
            if amount > 0 and recipient in recipients:
                found.append(
                    NativeTransfer(
                        tx_hash,
                        position_of(address),
                        frame["from"][2:].lower(),
                        recipient,
                        amount,
                        number,
                        block_hash,
                    )
                )
    return found


def _succeeded_children(
    frame: dict[str, Any], address: tuple[int, ...]
) -> Iterator[tuple[tuple[int, ...], dict[str, Any]]]:
    """Every frame below `frame` that did not fail, nor any frame above it (depth first)."""
    if frame.get("error"):
        return
    for index, child in enumerate(frame.get("calls") or ()):
        child_address = (*address, index)
        if child.get("error"):
            continue
        yield child_address, child
        yield from _succeeded_children(child, child_address)


def internal_from_trace_block(
    block: dict[str, Any], traces: list[dict[str, Any]], recipients: Container[str]
) -> list[NativeTransfer]:
    """Value-bearing frames below the top of each transaction, from `trace_block`: a flat list
    in depth-first order, each with its `traceAddress`; a failed frame carries `error`, its
    children do not (they are skipped by their address's prefix)."""
    number, block_hash = int(block["number"], 16), block["hash"].lower()
    failed: set[tuple[str, tuple[int, ...]]] = set()
    found: list[NativeTransfer] = []
    for trace in traces:
        tx_hash = trace.get("transactionHash")
        if tx_hash is None:  # block and uncle rewards
            continue
        if str(trace.get("blockHash", block_hash)).lower() != block_hash:
            raise TraceMismatch(f"block {number}: trace of block {trace.get('blockHash')}")
        tx_hash = tx_hash.lower()
        address = tuple(trace.get("traceAddress") or ())
        if trace.get("error") or any((tx_hash, address[:i]) in failed for i in range(len(address))):
            failed.add((tx_hash, address))
            continue
        if not address:
            continue  # the transaction itself: top-level, read from the block
        transfer = _value_of(trace, tx_hash, address, number, block_hash)
        if transfer is not None and transfer.to_hex20 in recipients:
            found.append(transfer)
    return found


def _value_of(
    trace: dict[str, Any], tx_hash: str, address: tuple[int, ...], number: int, block_hash: str
) -> NativeTransfer | None:
    action = trace.get("action") or {}
    kind = trace.get("type")
    sender, value = action.get("from"), action.get("value")
    if kind == "call" and action.get("callType") in _VALUE_CALLS:
        to = action.get("to")
    elif kind == "create":
        to = (trace.get("result") or {}).get("address")
    elif kind == "suicide":  # SELFDESTRUCT: the contract's whole balance to its beneficiary
        sender, to, value = (
            action.get("address"),
            action.get("refundAddress"),
            action.get("balance"),
        )
    else:
        return None
    amount = int(value or "0x0", 16)
    if not to or not sender or amount <= 0:
        return None
    return NativeTransfer(
        tx_hash,
        position_of(address),
        str(sender)[2:].lower(),
        str(to)[2:].lower(),
        amount,
        number,
        block_hash,
    )
