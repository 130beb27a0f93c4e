"""Upstream mode: each deposit PayIn announces is checked against our own observation.

matched      our watcher recorded the same deposit: chain, transaction, log, address,
             token and amount agree;
mismatched   we recorded that transfer, and something differs (critical alert);
not_seen     we have no record yet (checked again every few seconds);
missed       still not_seen once `upstream_grace` has passed: a warning — our watcher missed
             it, or the chain is not watched here (rescan, or add the chain);
not_on_chain no receipt, or a failed one, at a direct look-up (critical alert: PayIn announced
             money that does not exist);
ignored      neither a deposit nor an order event.

PayIn's `order.*` events are checked against our record of the order and of its payments
(pool/upstream/order_check.py: `order_unknown`, `order_unpaid`, `order_paid`, critical).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chains.checks.audit import rpc_hash
from chains.codec import transaction_id
from chains.endpoints import EndpointPool
from chains.presets import ChainConfig, watched_chains
from chains.rpc import RpcClient
from pool.alerts.repository import fire_alert
from pool.deposits.repository import DepositRow
from pool.kit.amounts import format_units, same_amount
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.errors import ChainUnavailable
from pool.kit.loop import run_every
from pool.upstream import repository as repo
from pool.upstream.order_check import ORDER_DISCREPANCIES, ORDER_EVENTS, check_order_event
from pool.vocabulary import DEPOSIT_CONFIRMED, DEPOSIT_PENDING, UPSTREAM_DISCREPANCY

log = logging.getLogger("addrpool.upstream")
POLL_SECONDS = 2.0
DEPOSIT_EVENTS = (DEPOSIT_PENDING, DEPOSIT_CONFIRMED)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    reason: str | None = None
    deposit_id: str | None = None


class UpstreamChecker:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.chains = {c.chain_id: c for c in watched_chains(settings)}
        # One endpoint pool per chain for the worker's life, not one per event checked: an
        # endpoint set aside stays aside for its back-off, and a lagging one (which would not
        # know a recent transaction: a false `not_on_chain`) is never asked.
        self._endpoints = {c.chain_id: EndpointPool.for_chain(c) for c in self.chains.values()}

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await run_every(
                stop,
                self.run_once,
                pause=POLL_SECONDS,
                log=log,
                failure="checking PayIn's events failed; trying again",
            )
        finally:
            await self.close()

    async def close(self) -> None:
        for endpoints in self._endpoints.values():
            await endpoints.close()

    async def run_once(self) -> int:
        """Check every event not yet settled; returns how many were looked at."""
        async with self.db.read() as conn:
            due = await repo.events_to_check(conn, statuses=("received", "not_seen"))
        for row in due:
            outcome = await self._check(row)
            await self._record(row, outcome)
        return len(due)

    async def _check(self, row: dict[str, Any]) -> Outcome:
        data = (row["payload"] or {}).get("data") or {}
        if row["type"] in ORDER_EVENTS:
            async with self.db.read() as conn:
                verdict = await check_order_event(
                    conn,
                    row["type"],
                    data if isinstance(data, dict) else {},
                    received_at=row["received_at"],
                    now=utc_now(),
                    grace=self.settings.upstream_grace,
                )
            return Outcome(verdict.status, verdict.reason)
        if row["type"] not in DEPOSIT_EVENTS:
            return Outcome("ignored", "neither a deposit nor an order event")
        chain = self.chains.get(str(data.get("chainId")))
        if chain is None:
            return Outcome("not_seen", f"chain {data.get('chainId')!r} is not watched here")
        tx_hash = transaction_id(chain.protocol, str(data.get("txHash", "")))
        async with self.db.read() as conn:
            ours = await repo.deposits_of_transaction(
                conn, chain_id=chain.chain_id, tx_hash=tx_hash
            )
        if ours:
            return compare(data, ours)
        return await self._on_chain(chain, tx_hash)

    async def _on_chain(self, chain: ChainConfig, tx_hash: str) -> Outcome:
        async def receipt_of(client: RpcClient) -> Any:
            return await client.call("eth_getTransactionReceipt", [rpc_hash(tx_hash)])

        try:
            receipt = await self._endpoints[chain.chain_id].serve(receipt_of)
        except ChainUnavailable as exc:
            return Outcome("not_seen", f"checked again later: {exc.message}")
        if receipt is None:
            return Outcome("not_on_chain", "the chain has no such transaction")
        if receipt.get("status") != "0x1":
            return Outcome(
                "not_on_chain", f"the transaction failed on chain ({receipt.get('status')})"
            )
        return Outcome("not_seen", "on chain, not recorded by our watcher yet")

    async def _record(self, row: dict[str, Any], outcome: Outcome) -> None:
        now = utc_now()
        if self._missed(row, outcome, now):  # past the grace period: final, and alerted
            outcome = Outcome(
                "missed", f"not recorded by us within the grace period: {outcome.reason}"
            )
        async with self.db.write() as conn:
            await repo.record_check(
                conn,
                row_id=row["id"],
                status=outcome.status,
                reason=outcome.reason,
                deposit_id=outcome.deposit_id,
                now=now,
            )
            if outcome.status in ("mismatched", "not_on_chain", "missed", *ORDER_DISCREPANCIES):
                await _alert(conn, row, outcome, now)

    def _missed(self, row: dict[str, Any], outcome: Outcome, now: datetime) -> bool:
        late = now - row["received_at"] > self.settings.upstream_grace
        return outcome.status == "not_seen" and late


async def _alert(conn: Any, row: dict[str, Any], outcome: Outcome, now: datetime) -> None:
    critical = outcome.status in ("mismatched", "not_on_chain", *ORDER_DISCREPANCIES)
    await fire_alert(
        conn,
        kind=UPSTREAM_DISCREPANCY,
        subject=f"{UPSTREAM_DISCREPANCY}:{row['event_id']}",
        severity="critical" if critical else "warning",
        value=outcome.status,
        details={"eventId": row["event_id"], "type": row["type"], "reason": outcome.reason},
        now=now,
    )


def compare(claimed: dict[str, Any], ours: list[DepositRow]) -> Outcome:
    """PayIn's deposit against ours in the same transaction (by log index when it gives one)."""
    candidates = ours
    if claimed.get("logIndex") is not None:
        candidates = [d for d in ours if d.log_index == claimed.get("logIndex")]
    best: tuple[DepositRow, list[str]] | None = None
    for row in candidates:
        differences = _differences(claimed, row)
        if not differences:
            return Outcome("matched", None, row.id)
        if best is None or len(differences) < len(best[1]):
            best = (row, differences)
    if best is None:
        return Outcome("mismatched", f"no deposit of ours at log {claimed.get('logIndex')}")
    return Outcome("mismatched", "; ".join(best[1]), best[0].id)


def _differences(claimed: dict[str, Any], row: DepositRow) -> list[str]:
    found = []
    if str(claimed.get("address", "")).lower() != row.address.lower():
        found.append(f"address: PayIn {claimed.get('address')}, ours {row.address}")
    if str(claimed.get("currency")) != row.currency:
        found.append(f"token: PayIn {claimed.get('currency')}, ours {row.currency}")
    ours = format_units(row.amount, row.decimals)
    if not same_amount(claimed.get("amount"), ours):
        found.append(f"amount: PayIn {claimed.get('amount')}, ours {ours}")
    reference = claimed.get("depositReference")
    if reference is not None and reference != row.deposit_reference:
        found.append(f"reference: PayIn {reference}, ours {row.deposit_reference}")
    return found
