"""Reconciliation's chain side: re-read recent deposits and the watcher's coverage of a chain.

For each recent deposit deep enough to be settled: the block at its height must still carry
the recorded hash, the transaction's receipt must exist in that block and have succeeded, and
the log at the recorded index must be the same token's Transfer to the same address of the
same amount (a native deposit: the same coin transfer at its trace position, audit_native). A
confirmed deposit whose block left the canonical chain is reverted here (its
`deposit.reverted` goes out); a hole in the watcher's block window is rescanned and filled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chains.checks.audit_native import compare_native, native_on_chain
from chains.codec import address_parser
from chains.evm.erc20 import TRANSFER_TOPIC, decode_header
from chains.presets import ChainConfig
from chains.reader import ChainReader
from chains.rpc import RpcClient
from chains.watch.leadership import FROZEN_LEADER_TIMEOUT_MS
from chains.watch.rescan import plan_rescan, scan
from pool.chain_state import repository as chain_state
from pool.deposits import ledger
from pool.deposits import ledger_repository as ledger_repo
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.pacing import UNPACED, Pacer
from pool.reconciliation import repository as repo
from pool.reconciliation.service import Finding, coverage_gaps, of_deposit
from pool.vocabulary import CREDITED

log = logging.getLogger("addrpool.reconcile")
RPC_BATCH = 100  # calls per JSON-RPC batch


@dataclass(slots=True)
class ChainAudit:
    chain_id: str
    endpoint: str | None = None
    head: int | None = None
    verified: int = 0
    reverted: int = 0
    rescanned: list[dict[str, int]] = field(default_factory=list)
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "head": self.head,
            "verifiedOnChain": self.verified,
            "reverted": self.reverted,
            "rescanned": self.rescanned,
            "error": self.error,
        }


async def audit_chain(
    chain: ChainConfig,
    db: Database,
    client: RpcClient,
    *,
    since: datetime,
    chain_reads: int,
    pacer: Pacer | None = None,
) -> ChainAudit:
    """Raises RpcError when the node fails; what was repaired before that stays repaired.

    `pacer` rests after each RPC batch: the node is often on the same box as the binds.
    """
    audit = ChainAudit(chain.chain_id, endpoint=client.endpoint)
    reader = ChainReader(chain, client)
    pacer = pacer or Pacer(UNPACED)
    audit.head = await reader.head()
    settled = audit.head - chain.confirmations + 1
    async with db.read() as conn:
        recent = await repo.most_recent(
            conn, chain_id=chain.chain_id, since=since, up_to_block=settled, limit=chain_reads
        )
    await pacer.rest()
    await _verify_deposits(chain, db, reader, recent, audit, pacer)
    await _check_coverage(chain, db, client, reader, audit)
    return audit


# -- deposits --------------------------------------------------------------------------------


async def _verify_deposits(
    chain: ChainConfig,
    db: Database,
    reader: ChainReader,
    recent: Sequence[repo.LedgerDeposit],
    audit: ChainAudit,
    pacer: Pacer,
) -> None:
    canonical = await _canonical_hashes(reader, sorted({d.block_number for d in recent}), pacer)
    receipts = await _receipts(reader.client, [rpc_hash(d.tx_hash) for d in recent], pacer)
    token_hex20 = _token_hex20s(chain, recent)
    coins, traced = await native_on_chain(reader, recent, pacer)
    for row in recent:
        finding = _compare(row, canonical.get(row.block_number), receipts, token_hex20)
        if finding is None and row.trace_position:
            differs = compare_native(row, coins, traced)
            finding = None if differs is None else of_deposit("mismatch", row, differs)
        audit.verified += 1
        if finding is None:
            continue
        audit.findings.append(finding)
        if finding.category == "not_canonical" and row.status in CREDITED:
            audit.reverted += await _revert(db, row)


def _compare(
    row: repo.LedgerDeposit,
    canonical_hash: str | None,
    receipts: dict[str, dict[str, Any] | None],
    token_hex20: dict[str, str],
) -> Finding | None:
    if canonical_hash is not None and canonical_hash != row.block_hash:
        return of_deposit("not_canonical", row, f"block {row.block_number} is now {canonical_hash}")
    receipt = receipts.get(rpc_hash(row.tx_hash))
    if receipt is None:
        return of_deposit("receipt_missing", row, "the node has no receipt for the transaction")
    if str(receipt.get("blockHash", "")).lower() != row.block_hash:
        where = receipt.get("blockNumber")
        return of_deposit("receipt_missing", row, f"the transaction is in block {where} instead")
    if receipt.get("status") != "0x1":
        return of_deposit("receipt_failed", row, f"receipt status {receipt.get('status')}")
    if row.trace_position:  # no log: the coin's transfer is compared by compare_native
        return None
    differences = _log_differences(row, receipt, token_hex20[row.token_contract])
    if differences:
        return of_deposit("mismatch", row, "; ".join(differences))
    return None


def _log_differences(
    row: repo.LedgerDeposit, receipt: dict[str, Any], token_hex20: str
) -> list[str]:
    entry = next(
        (
            e
            for e in receipt.get("logs") or []
            if int(e.get("logIndex", "0x0"), 16) == row.log_index
        ),
        None,
    )
    if entry is None:
        return [f"no log at index {row.log_index}"]
    topics = [str(t).lower() for t in entry.get("topics") or []]
    if len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
        return [f"log {row.log_index} is not an ERC-20 Transfer"]
    differences = []
    token = str(entry.get("address", "")).lower().removeprefix("0x")
    if token != token_hex20:
        differences.append(f"token on chain 0x{token}, recorded {row.token_contract}")
    recipient = topics[2][-40:]
    if recipient != row.recipient_hex20:
        differences.append(f"recipient on chain {recipient}, recorded {row.recipient_hex20}")
    data = str(entry.get("data") or "0x")
    amount = int(data, 16) if len(data) > 2 else 0
    if amount != row.amount:
        differences.append(f"amount on chain {amount}, recorded {row.amount} (base units)")
    return differences


async def _canonical_hashes(
    reader: ChainReader, heights: list[int], pacer: Pacer
) -> dict[int, str]:
    """In batches a hosted provider accepts (some refuse a thousand calls in one)."""
    hashes: dict[int, str] = {}
    for start in range(0, len(heights), RPC_BATCH):
        hashes.update(await reader.canonical_hashes(heights[start : start + RPC_BATCH]))
        await pacer.rest()
    return hashes


def _token_hex20s(chain: ChainConfig, rows: Sequence[repo.LedgerDeposit]) -> dict[str, str]:
    parse = address_parser(chain.protocol)
    contracts = {r.token_contract for r in rows if not r.trace_position}
    return {contract: parse(contract).hex20 for contract in contracts}


def rpc_hash(tx_hash: str) -> str:
    """Nodes take 0x-prefixed hashes; Tron ids are stored without it (docs/design.md, Chains)."""
    lowered = tx_hash.lower()
    return lowered if lowered.startswith("0x") else "0x" + lowered


async def _receipts(
    client: RpcClient, tx_hashes: list[str], pacer: Pacer
) -> dict[str, dict[str, Any] | None]:
    unique = sorted(set(tx_hashes))
    receipts: dict[str, dict[str, Any] | None] = {}
    for start in range(0, len(unique), RPC_BATCH):
        chunk = unique[start : start + RPC_BATCH]
        answers = await client.batch([("eth_getTransactionReceipt", [h]) for h in chunk])
        receipts.update(zip(chunk, answers, strict=True))
        await pacer.rest()
    return receipts


async def _revert(db: Database, seen: repo.LedgerDeposit) -> int:
    """Revert a credited deposit whose block the chain dropped, unless it changed meanwhile
    (the watcher may have reverted or re-recorded it since we read it)."""
    key = (seen.tx_hash, seen.log_index, seen.trace_position)
    async with db.write() as conn:
        known = await ledger_repo.known_deposits(conn, chain_id=seen.chain_id, keys={key})
        current = known.get(key)
        if (
            current is None
            or current.status not in CREDITED
            or current.block_hash != seen.block_hash
        ):
            return 0
        await ledger.revert_deposits(conn, orphaned=[current], now=utc_now())
    log.warning(
        "confirmed deposit no longer canonical: reverted",
        extra={"chain": seen.chain_id, "deposit_id": seen.id, "block": seen.block_number},
    )
    return 1


# -- coverage --------------------------------------------------------------------------------


async def _check_coverage(
    chain: ChainConfig, db: Database, client: RpcClient, reader: ChainReader, audit: ChainAudit
) -> None:
    async with db.read() as conn:
        position = await repo.cursor_position(conn, chain.chain_id)
        heights = await repo.window_heights(conn, chain.chain_id)
    if position is None:
        return
    cursor, head = position
    for first, last in coverage_gaps(heights, cursor=cursor, head=head, window=chain.window):
        # This endpoint only: a failure fails the audit, which the next endpoint does again.
        scanned = await plan_rescan(chain, db, from_block=first, to_block=last)
        await scan(chain, db, client, report=scanned)
        await _fill_window(chain, db, reader, first, last)
        audit.rescanned.append({"fromBlock": first, "toBlock": last, "recorded": scanned.recorded})
        audit.findings.append(
            Finding(
                category="coverage_gap",
                chain_id=chain.chain_id,
                detail=f"blocks {first}-{last} were never scanned; rescanned, "
                f"{scanned.recorded} deposit(s) recorded",
                block_number=first,
                key=f"{chain.chain_id}:{first}-{last}",
            )
        )


async def _fill_window(
    chain: ChainConfig, db: Database, reader: ChainReader, first: int, last: int
) -> None:
    answers = await reader.client.batch(
        [("eth_getBlockByNumber", [hex(n), False]) for n in range(first, last + 1)]
    )
    headers = [decode_header(block) for block in answers if block is not None]
    await store_refilled_window(
        db, chain.chain_id, [(h.number, h.hash, h.parent_hash) for h in headers]
    )


async def store_refilled_window(
    db: Database, chain_id: str, blocks: Sequence[tuple[int, str, str]]
) -> int:
    """Put re-read headers into the heights the watcher's window still lacks; how many.

    The window is the chain leader's state: this waits for the leadership row as the leader's
    own writes do, so it never interleaves with one of them (invariant 15).
    """
    async with db.write() as conn:
        await chain_state.lock_leadership(
            conn, chain_id=chain_id, idle_timeout_ms=FROZEN_LEADER_TIMEOUT_MS
        )
        return await repo.fill_window(conn, chain_id=chain_id, blocks=blocks)
