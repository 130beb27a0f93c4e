"""Decoding the chain's coin moving to pool addresses from raw block and trace JSON (pure).

The anvil tests (tests/chains/watch/test_native*.py) cover what anvil produces; these cover
frame kinds a forwarder contract does not make (delegate and static calls, creations, rewards)
and each tracer's SELFDESTRUCT shape on its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from chains.evm.native import (
    TraceMismatch,
    internal_from_call_tracer,
    internal_from_trace_block,
    top_level_to,
)

POOL = "11" * 20
OTHER = "22" * 20
CONTRACT = "33" * 20
TX = "0x" + "ab" * 32
BLOCK_HASH = "0x" + "cd" * 32


def block(*txs: dict[str, Any]) -> dict[str, Any]:
    return {"number": "0x10", "hash": BLOCK_HASH, "transactions": list(txs)}


def tx(to: str | None, value: str, tx_hash: str = TX) -> dict[str, Any]:
    return {"hash": tx_hash, "from": "0x" + OTHER, "to": to and "0x" + to, "value": value}


def frame(kind: str, to: str, value: str | None, *calls: dict[str, Any], **extra: Any) -> dict:
    out = {"type": kind, "from": "0x" + CONTRACT, "to": "0x" + to, "calls": list(calls), **extra}
    if value is not None:
        out["value"] = value
    return out


def test_top_level_keeps_value_to_pool_addresses_only() -> None:
    found = top_level_to(
        block(tx(POOL, "0x5"), tx(OTHER, "0x5", "0x01"), tx(POOL, "0x0", "0x02"), tx(None, "0x9")),
        {POOL},
    )
    assert [(t.tx_hash, t.position, t.amount, t.block_number) for t in found] == [(TX, "tx", 5, 16)]


def test_call_tracer_skips_delegate_and_static_calls_and_reverted_subtrees() -> None:
    root = frame(
        "CALL",
        CONTRACT,
        "0x0",
        frame("DELEGATECALL", POOL, "0x7"),  # tx.0: the caller's value, nothing moved
        frame("STATICCALL", POOL, None),  # tx.1
        frame("CALL", CONTRACT, "0x0", frame("CALL", POOL, "0x3"), error="execution reverted"),
        frame("CALL", CONTRACT, "0x0", frame("CREATE2", POOL, "0x4"), frame("CALL", POOL, "0x8")),
    )
    found = internal_from_call_tracer(
        block(tx(CONTRACT, "0x0")), [{"txHash": TX, "result": root}], {POOL}
    )
    assert [(t.position, t.amount) for t in found] == [("tx.3.0", 4), ("tx.3.1", 8)]


def test_call_tracer_of_a_failed_transaction_is_empty() -> None:
    root = frame("CALL", CONTRACT, "0x0", frame("CALL", POOL, "0x3"), error="out of gas")
    assert internal_from_call_tracer(block(tx(CONTRACT, "0x0")), [{"result": root}], {POOL}) == []


@pytest.mark.parametrize(
    "traces",
    [
        [],  # fewer traces than transactions
        [{"txHash": "0x" + "ee" * 32, "result": frame("CALL", POOL, "0x1")}],  # another block's
    ],
)
def test_call_tracer_of_another_block_is_refused(traces: list[dict[str, Any]]) -> None:
    with pytest.raises(TraceMismatch):
        internal_from_call_tracer(block(tx(CONTRACT, "0x0")), traces, {POOL})


def trace(address: list[int], kind: str = "call", **fields: Any) -> dict[str, Any]:
    action = {"from": "0x" + CONTRACT, "to": "0x" + POOL, "value": "0x1", "callType": "call"}
    action.update(fields.pop("action", {}))
    return {
        "type": kind,
        "action": action,
        "traceAddress": address,
        "transactionHash": TX,
        "blockHash": BLOCK_HASH,
        **fields,
    }


def test_trace_block_skips_children_of_a_reverted_call_by_address() -> None:
    traces = [
        {"type": "reward", "action": {"author": "0x" + POOL, "value": "0x9"}, "traceAddress": []},
        trace([], action={"to": "0x" + CONTRACT}),  # the transaction itself: top-level
        trace([0], error="Reverted", action={"to": "0x" + CONTRACT}),
        trace([0, 0]),  # no error of its own, undone with its parent
        trace([1], action={"callType": "delegatecall"}),
        trace([2], "create", action={"value": "0x2"}, result={"address": "0x" + POOL}),
        trace([3], action={"value": "0x6"}),
    ]
    found = internal_from_trace_block(block(tx(CONTRACT, "0x0")), traces, {POOL})
    assert [(t.position, t.amount) for t in found] == [("tx.2", 2), ("tx.3", 6)]


def test_trace_block_of_another_block_is_refused() -> None:
    with pytest.raises(TraceMismatch):
        internal_from_trace_block(
            block(tx(CONTRACT, "0x0")), [trace([0], blockHash="0x" + "00" * 32)], {POOL}
        )


def test_call_tracer_reads_a_selfdestruct_payout_unless_it_was_undone() -> None:
    root = frame(
        "CALL",
        CONTRACT,
        "0x0",
        frame("SELFDESTRUCT", POOL, "0x5"),  # tx.0: the contract's balance to the pool
        frame("CALL", CONTRACT, "0x0", frame("SELFDESTRUCT", POOL, "0x3"), error="Reverted"),
        frame("SELFDESTRUCT", POOL, "0x0"),  # nothing left to pay
    )
    found = internal_from_call_tracer(
        block(tx(CONTRACT, "0x0")), [{"txHash": TX, "result": root}], {POOL}
    )
    assert [(t.position, t.amount, t.from_hex20) for t in found] == [("tx.0", 5, CONTRACT)]


def test_trace_block_reads_a_suicide_by_its_balance_and_refund_address() -> None:
    def suicide(address: list[int], balance: str, **fields: Any) -> dict[str, Any]:
        action = {"address": "0x" + CONTRACT, "balance": balance, "refundAddress": "0x" + POOL}
        return {**trace(address, "suicide", **fields), "action": action}

    traces = [
        trace([], action={"to": "0x" + CONTRACT}),
        suicide([0], "0x5"),
        trace([1], error="Reverted", action={"to": "0x" + CONTRACT}),
        suicide([1, 0], "0x3"),  # undone with its parent
        suicide([2], "0x0"),
    ]
    found = internal_from_trace_block(block(tx(CONTRACT, "0x0")), traces, {POOL})
    assert [(t.position, t.amount, t.from_hex20) for t in found] == [("tx.0", 5, CONTRACT)]
