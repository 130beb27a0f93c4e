"""Reconciliation of native deposits: the coin's transfer read again from the chain.

A top-level deposit is the transaction itself (`eth_getTransactionByHash`: recipient, value);
an internal one is found again in the transaction's trace (`debug_traceTransaction` with the
call tracer, or `trace_transaction`) at its trace position, with no failed frame above it. The
same decoders as the watcher's (chains.evm.native), so the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chains.evm import native
from chains.evm.native import TOP_LEVEL, NativeTransfer
from chains.reader import ChainReader
from pool.kit.config_sections import Tracer
from pool.kit.pacing import Pacer
from pool.reconciliation import repository as repo

RPC_BATCH = 100
NativeKey = tuple[str, str]  # (0x tx hash, trace position)


async def native_on_chain(
    reader: ChainReader, rows: Sequence[repo.LedgerDeposit], pacer: Pacer
) -> tuple[dict[NativeKey, NativeTransfer], bool]:
    """The coin's transfers of these native rows' transactions, to their recipients, as the
    chain has them now; and whether internal ones could be read (a node without traces)."""
    native_rows = [r for r in rows if r.trace_position]
    top = sorted({_hash(r.tx_hash) for r in native_rows if r.trace_position == TOP_LEVEL})
    inner = sorted({_hash(r.tx_hash) for r in native_rows if r.trace_position != TOP_LEVEL})
    recipients = {r.recipient_hex20 for r in native_rows}
    found: dict[NativeKey, NativeTransfer] = {}
    for start in range(0, len(top), RPC_BATCH):
        chunk = top[start : start + RPC_BATCH]
        calls = [("eth_getTransactionByHash", [h]) for h in chunk]
        for tx in await reader.client.batch(calls):
            if tx is not None and tx.get("blockHash"):
                found |= _keyed(native.top_level_to(_block_of(tx, [tx]), recipients))
        await pacer.rest()
    if not inner:
        return found, True
    tracer = reader.chain.tracer
    if tracer == "auto":
        tracer = await reader.probe_tracer()
    if tracer == "none":
        return found, False
    for tx_hash in inner:
        found |= _keyed(await _traced(reader, tracer, tx_hash, recipients))
        await pacer.rest()
    return found, True


async def _traced(
    reader: ChainReader, tracer: Tracer, tx_hash: str, recipients: set[str]
) -> list[NativeTransfer]:
    tx = await reader.client.call("eth_getTransactionByHash", [tx_hash])
    if tx is None or not tx.get("blockHash"):
        return []
    block = _block_of(tx, [tx])
    try:
        if tracer == "debug":
            frame = await reader.client.call(
                "debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}]
            )
            return native.internal_from_call_tracer(block, [{"result": frame}], recipients)
        traces = await reader.client.call("trace_transaction", [tx_hash])
        return native.internal_from_trace_block(block, traces or [], recipients)
    except native.TraceMismatch:
        return []  # the transaction moved blocks since: the receipt check says so already


def compare_native(
    row: repo.LedgerDeposit, found: dict[NativeKey, NativeTransfer], traced: bool
) -> str | None:
    """What differs between the row and the chain, or None."""
    if row.trace_position != TOP_LEVEL and not traced:
        return None  # no trace API: the block and the receipt were all there was to check
    transfer = found.get((_hash(row.tx_hash), row.trace_position))
    if transfer is None or transfer.to_hex20 != row.recipient_hex20:
        return f"no transfer of the coin to the address at {row.trace_position}"
    if transfer.amount != row.amount:
        return f"amount on chain {transfer.amount}, recorded {row.amount} (base units)"
    return None


def _block_of(tx: dict[str, Any], transactions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"number": tx["blockNumber"], "hash": tx["blockHash"], "transactions": transactions}


def _keyed(transfers: list[NativeTransfer]) -> dict[NativeKey, NativeTransfer]:
    return {(t.tx_hash, t.position): t for t in transfers}


def _hash(tx_hash: str) -> str:
    lowered = tx_hash.lower()
    return lowered if lowered.startswith("0x") else "0x" + lowered
