"""The reconciliation benchmark's history: a pool and a week of settled deposits, in bulk.

Written with SQLAlchemy Core inserts (both databases), not through the watcher: what the
watcher would have left behind for deposits long settled — bound addresses and their
bindings (each with its `deposit.address_bound` event), `completed` deposits detected within
the reconciliation window, each with a `deposit.pending` and a `deposit.confirmed` event whose
data carries the full deposit payload (so the JSON read out in SQL is of realistic size) and
one succeeded delivery per event to the one webhook endpoint.

Block numbers stay below `below_block` (the first block of the real transfers): the chain
re-reads take the most recent deposits by height, which must be the real ones.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chains.evm.address import to_checksum_address
from pool.deposits.new_rows import deposit_id
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.db import Database
from pool.kit.secret_box import SecretBox
from pool.kit.tables import address, binding, delivery, deposit, event
from pool.vocabulary import ADDRESS_BOUND, DEPOSIT_CONFIRMED, DEPOSIT_PENDING, DEPOSIT_REVERTED
from pool.webhooks.endpoints import create_endpoint
from pool.webhooks.outbox import new_event_id

CHAIN_ID = "devnet"
CHUNK = 2_000  # rows per INSERT: SQLAlchemy's insertmanyvalues batches them
DEPOSITS_PER_BINDING = 2
DEPOSIT_EVENTS = (DEPOSIT_PENDING, DEPOSIT_CONFIRMED, DEPOSIT_REVERTED)


@dataclass(frozen=True, slots=True)
class History:
    token_contract: str  # as the watcher records it (checksummed)
    below_block: int
    confirmations: int
    deposits: int


@dataclass(frozen=True, slots=True)
class BoundAddress:
    address_id: int
    text: str
    binding_id: int
    reference: str


def chunked(rows: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# -- the pool and the endpoint ----------------------------------------------------------------


async def seed_pool(db: Database, count: int) -> None:
    """`count` never-used EVM addresses (random keys; the claim never looks at them)."""
    now = utc_now()
    rows = []
    for _ in range(count):
        hex20 = secrets.token_hex(20)
        rows.append(
            {
                "protocol": "evm",
                "address": to_checksum_address(hex20),
                "hex20": hex20,
                "status": "available",
                "created_at": now,
            }
        )
    for chunk in chunked(rows):
        async with db.write() as conn:
            await conn.execute(insert(address), list(chunk))


async def seed_endpoint(db: Database, secret_key: str) -> str:
    """One live endpoint subscribed to the deposit events (not to address_bound: binds
    write no deliveries, as on a typical install)."""
    async with db.write() as conn:
        created, _ = await create_endpoint(
            conn,
            SecretBox(secret_key),
            url="https://receiver.example/hooks/addrpool",
            events=list(DEPOSIT_EVENTS),
            scheme="body",
            description="bench",
            now=utc_now(),
        )
    return created.id


# -- bindings ---------------------------------------------------------------------------------


async def bind_in_bulk(db: Database, count: int, *, at: datetime) -> list[BoundAddress]:
    """The first `count` addresses bound, each with its binding and address_bound event."""
    async with db.write() as conn:
        rows = (
            await conn.execute(
                select(address.c.id, address.c.address).order_by(address.c.id).limit(count)
            )
        ).all()
        await _mark_bound(conn, [int(r[0]) for r in rows])
        bound = await _insert_bindings(conn, rows, at)
        await _insert_bound_events(conn, bound, at)
    return bound


async def _mark_bound(conn: AsyncConnection, ids: Sequence[int]) -> None:
    if not ids:
        return
    await conn.execute(
        update(address)
        .where(address.c.id.between(ids[0], ids[-1]))
        .values(status="bound", last_reference=literal("hist-").concat(cast(address.c.id, String)))
    )


async def _insert_bindings(
    conn: AsyncConnection, rows: Sequence[Any], at: datetime
) -> list[BoundAddress]:
    bound: list[BoundAddress] = []
    statement = insert(binding).returning(binding.c.id, sort_by_parameter_order=True)
    for chunk in chunked(rows):
        values = [
            {
                "deposit_reference": f"hist-{address_id}",
                "protocol": "evm",
                "address_id": address_id,
                "bound_at": at,
                "bound_by": "bench",
            }
            for address_id, _ in chunk
        ]
        ids = (await conn.execute(statement, values)).scalars().all()
        bound += [
            BoundAddress(int(a), str(t), int(b), f"hist-{a}")
            for (a, t), b in zip(chunk, ids, strict=True)
        ]
    return bound


async def _insert_bound_events(
    conn: AsyncConnection, bound: Sequence[BoundAddress], at: datetime
) -> None:
    rows = [
        {
            "id": new_event_id(),
            "type": ADDRESS_BOUND,
            "data": {"depositReference": b.reference, "protocol": "evm", "address": b.text},
            "created_at": at,
        }
        for b in bound
    ]
    for chunk in chunked(rows):
        await conn.execute(insert(event), list(chunk))


# -- deposits, events, deliveries -------------------------------------------------------------


def deposit_rows(
    history: History, bound: Sequence[BoundAddress], *, now: datetime, window: timedelta
) -> list[dict[str, Any]]:
    """Completed deposits detected between 95% of the window ago and an hour ago."""
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    oldest = now - window * 0.95
    span = (now - timedelta(hours=1)) - oldest
    rows = []
    for n in range(history.deposits):
        detected = oldest + span * (n / max(1, history.deposits))
        tx_hash = "0x" + rng.randbytes(32).hex()
        owner = bound[n // DEPOSITS_PER_BINDING % len(bound)]
        rows.append(
            {
                "id": deposit_id(CHAIN_ID, tx_hash, 0),
                "chain_id": CHAIN_ID,
                "tx_hash": tx_hash,
                "log_index": 0,
                "block_number": 1 + n * (history.below_block - 2) // max(1, history.deposits),
                "block_hash": "0x" + rng.randbytes(32).hex(),
                "from_address": to_checksum_address(rng.randbytes(20).hex()),
                "address_id": owner.address_id,
                "binding_id": owner.binding_id,
                "token_contract": history.token_contract,
                "currency": "USDT",
                "amount": rng.randint(1, 5_000) * 10**6,
                "decimals": 6,
                "status": "completed",
                "late": False,
                "detected_at": detected,
                "confirmed_at": detected + timedelta(minutes=1),
                "completed_at": detected + timedelta(minutes=1, seconds=2),
                "_owner": owner,
            }
        )
    return rows


def payload(row: dict[str, Any], status: str, confirmations: int) -> dict[str, Any]:
    """The deposit object of docs/api.md, as `pool.deposits.payloads.deposit_payload` writes it."""
    confirmed = status == "confirmed"
    return {
        "depositId": row["id"],
        "depositReference": row["_owner"].reference,
        "address": row["_owner"].text,
        "protocol": "evm",
        "chainId": CHAIN_ID,
        "currency": "USDT",
        "amount": str(row["amount"] // 10**6),
        "txHash": row["tx_hash"],
        "logIndex": 0,
        "blockNumber": row["block_number"],
        "from": row["from_address"],
        "confirmations": confirmations if confirmed else 1,
        "requiredConfirmations": confirmations,
        "status": status,
        "late": False,
        "detectedAt": isoformat_z(row["detected_at"]),
        "confirmedAt": isoformat_z(row["confirmed_at"]) if confirmed else None,
        "completedAt": None,
    }


async def insert_history(
    db: Database, history: History, endpoint_id: str, window: timedelta
) -> int:
    """Bindings, deposits, events and deliveries for `history.deposits`; the bindings made."""
    now = utc_now()
    bindings = max(1, -(-history.deposits // DEPOSITS_PER_BINDING))
    bound = await bind_in_bulk(db, bindings, at=now - window)
    rows = deposit_rows(history, bound, now=now, window=window)
    for chunk in chunked(rows, 1_000):
        async with db.write() as conn:
            await conn.execute(
                insert(deposit), [{k: v for k, v in r.items() if k != "_owner"} for r in chunk]
            )
            await _insert_announcements(conn, chunk, endpoint_id, history.confirmations)
    return len(bound)


async def _insert_announcements(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], endpoint_id: str, confirmations: int
) -> None:
    events = []
    for row in rows:
        for status, at in (("pending", row["detected_at"]), ("confirmed", row["confirmed_at"])):
            events.append(
                {
                    "id": new_event_id(),
                    "type": f"deposit.{status}",
                    "data": payload(row, status, confirmations),
                    "created_at": at,
                }
            )
    statement = insert(event).returning(event.c.seq, sort_by_parameter_order=True)
    seqs = (await conn.execute(statement, events)).scalars().all()
    await conn.execute(
        insert(delivery),
        [
            _succeeded(int(seq), e["created_at"], endpoint_id)
            for seq, e in zip(seqs, events, strict=True)
        ],
    )


def _succeeded(seq: int, at: datetime, endpoint_id: str) -> dict[str, Any]:
    done = at + timedelta(milliseconds=300)
    return {
        "id": "dlv_" + secrets.token_hex(12),
        "event_seq": seq,
        "endpoint_id": endpoint_id,
        "status": "succeeded",
        "attempts": 1,
        "next_attempt_at": None,
        "last_attempt_at": done,
        "last_status_code": 200,
        "created_at": at,
        "retry_from": at,
        "completed_at": done,
    }


async def mark_delivered(db: Database) -> int:
    """The watcher's own deposits as a delivery worker leaves them once every receiver said
    200: deliveries succeeded, confirmed deposits completed. Returns deposits completed."""
    now = utc_now()
    async with db.write() as conn:
        await conn.execute(
            update(delivery)
            .where(delivery.c.status == "pending")
            .values(
                status="succeeded",
                attempts=1,
                next_attempt_at=None,
                last_attempt_at=now,
                last_status_code=200,
                completed_at=now,
            )
        )
        done = await conn.execute(
            update(deposit)
            .where(deposit.c.status == "confirmed")
            .values(status="completed", completed_at=now)
        )
    return int(done.rowcount or 0)


async def table_sizes(db: Database) -> dict[str, int]:
    tables = {"address": address, "binding": binding, "deposit": deposit, "event": event}
    tables["delivery"] = delivery
    async with db.read() as conn:
        return {
            name: int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in tables.items()
        }
