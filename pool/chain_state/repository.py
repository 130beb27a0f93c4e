"""SQL for the watcher's own state: the cursor, the window of recent block hashes, and who
leads the chain (its lock and its epoch, see chains/watch/leadership.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.kit.bulk import in_values, insert_json, insert_rows
from pool.kit.tables import chain_block, chain_cursor, chain_leader


@dataclass(frozen=True, slots=True)
class Cursor:
    chain_id: str
    block_number: int  # the highest block fully processed
    block_hash: str
    head: int | None
    confirmations: int
    endpoint: str | None
    head_at: datetime | None
    updated_at: datetime
    endpoints: list[dict[str, Any]] | None = None
    block_time: datetime | None = None  # of the cursor's block; None: not known yet

    def endpoints_at(self, now: datetime) -> list[dict[str, Any]]:
        """Endpoint health as the watcher last wrote it, each wait counted down to `now`: the
        watcher writes on changes only (chains.endpoints.HealthNotes), not every second."""
        return [_waiting_until(view, now) for view in self.endpoints or []]


def endpoint_notes(views: list[dict[str, Any]]) -> list[str]:
    """What a chain's endpoints cannot do (internal transfers without a trace API), once each:
    `/health` problems and `addrpool chains` lines."""
    return sorted({v["note"] for v in views if v.get("note")})


# How internal transfers of a chain's coin are read from an endpoint, for people.
TRACER_TEXT = {
    "debug": "debug_traceBlockByNumber (call tracer)",
    "trace": "trace_block",
    "none": "no trace API",
}


def endpoint_tracers(chain_id: str, views: list[dict[str, Any]]) -> list[str]:
    """How each endpoint of a chain watching its coin is read, for `addrpool chains`: the
    choice `tracer = "auto"` made (an endpoint without a trace API has its note instead)."""
    return [
        f"{chain_id}: internal transfers read with {TRACER_TEXT[v['tracer']]} at {v['endpoint']}"
        for v in views
        if v.get("tracer") in ("debug", "trace")
    ]


def _waiting_until(view: dict[str, Any], now: datetime) -> dict[str, Any]:
    retry_at = view.get("retryAt")
    if not retry_at:
        return view
    waiting = (datetime.fromisoformat(retry_at) - now).total_seconds()
    return {**view, "retryInSeconds": round(max(0.0, waiting), 1)}


@dataclass(frozen=True, slots=True)
class StoredBlock:
    number: int
    hash: str
    parent_hash: str


async def load_cursor(conn: AsyncConnection, chain_id: str) -> Cursor | None:
    row = (
        await conn.execute(select(chain_cursor).where(chain_cursor.c.chain_id == chain_id))
    ).first()
    return Cursor(*row) if row is not None else None


async def head_and_confirmations(
    conn: AsyncConnection, chain_id: str
) -> tuple[int | None, int | None]:
    """What deposit payloads show as the chain's head and required depth (none: unknown)."""
    row = (
        await conn.execute(
            select(chain_cursor.c.head, chain_cursor.c.confirmations).where(
                chain_cursor.c.chain_id == chain_id
            )
        )
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def load_cursors(conn: AsyncConnection) -> list[Cursor]:
    rows = (await conn.execute(select(chain_cursor).order_by(chain_cursor.c.chain_id))).all()
    return [Cursor(*row) for row in rows]


async def create_cursor(conn: AsyncConnection, cursor: Cursor) -> None:
    await conn.execute(
        insert(chain_cursor).values(
            chain_id=cursor.chain_id,
            block_number=cursor.block_number,
            block_hash=cursor.block_hash,
            head=cursor.head,
            confirmations=cursor.confirmations,
            endpoint=cursor.endpoint,
            head_at=cursor.head_at,
            updated_at=cursor.updated_at,
        )
    )


async def move_cursor(
    conn: AsyncConnection,
    *,
    chain_id: str,
    block_number: int,
    block_hash: str,
    now: datetime,
    block_time: datetime | None = None,
) -> None:
    """`block_time`: the timestamp of that block; None when not at hand (a rollback), which
    holds order expiry on this chain until the next range moves the cursor again."""
    await conn.execute(
        update(chain_cursor)
        .where(chain_cursor.c.chain_id == chain_id)
        .values(
            block_number=block_number, block_hash=block_hash, updated_at=now, block_time=block_time
        )
    )


async def record_head(
    conn: AsyncConnection,
    *,
    chain_id: str,
    head: int,
    confirmations: int,
    endpoint: str,
    now: datetime,
) -> None:
    await conn.execute(
        update(chain_cursor)
        .where(chain_cursor.c.chain_id == chain_id)
        .values(head=head, confirmations=confirmations, endpoint=endpoint, head_at=now)
    )


async def save_blocks(
    conn: AsyncConnection, *, chain_id: str, blocks: Sequence[StoredBlock], keep_from: int
) -> None:
    """Store new canonical blocks and forget those below the window."""
    if blocks:
        numbers = [block.number for block in blocks]
        # A rescan or a retried batch may store a height again: the newest answer wins.
        await conn.execute(
            delete(chain_block).where(
                chain_block.c.chain_id == chain_id,
                in_values(conn.dialect.name, chain_block.c.number, numbers),
            )
        )
        rows = [
            {"chain_id": chain_id, "number": b.number, "hash": b.hash, "parent_hash": b.parent_hash}
            for b in blocks
        ]
        if conn.dialect.name == "sqlite":  # one statement either way (see pool.kit.bulk)
            await insert_rows(conn, chain_block, rows)
        else:
            await insert_json(conn, chain_block, rows)
    await conn.execute(
        delete(chain_block).where(
            chain_block.c.chain_id == chain_id, chain_block.c.number < keep_from
        )
    )


async def forget_blocks_above(conn: AsyncConnection, *, chain_id: str, number: int) -> None:
    await conn.execute(
        delete(chain_block).where(chain_block.c.chain_id == chain_id, chain_block.c.number > number)
    )


async def stored_blocks(conn: AsyncConnection, chain_id: str) -> list[StoredBlock]:
    """The window, newest first: where a reorg walk-back looks for the common ancestor."""
    rows = await conn.execute(
        select(chain_block.c.number, chain_block.c.hash, chain_block.c.parent_hash)
        .where(chain_block.c.chain_id == chain_id)
        .order_by(chain_block.c.number.desc())
    )
    return [StoredBlock(*row) for row in rows.all()]


async def record_endpoints(
    conn: AsyncConnection, *, chain_id: str, endpoints: list[dict[str, Any]]
) -> None:
    await conn.execute(
        update(chain_cursor).where(chain_cursor.c.chain_id == chain_id).values(endpoints=endpoints)
    )


# -- leadership ---------------------------------------------------------------------------


async def take_leadership(
    conn: AsyncConnection, *, chain_id: str, holder: str, now: datetime
) -> int:
    """The chain's new epoch: one above the previous leader's (1 for a chain never led).

    Waits while a transaction of the previous leader holds the row (`lock_leadership`), so
    what that transaction writes lands before the new epoch exists, or not at all.
    """
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(chain_leader)
        .values(chain_id=chain_id, epoch=1, holder=holder, taken_at=now)
        .on_conflict_do_update(
            index_elements=[chain_leader.c.chain_id],
            set_={"epoch": chain_leader.c.epoch + 1, "holder": holder, "taken_at": now},
        )
        .returning(chain_leader.c.epoch)
    )
    return int((await conn.execute(statement)).scalar_one())


async def lock_leadership(
    conn: AsyncConnection, *, chain_id: str, idle_timeout_ms: int
) -> int | None:
    """The chain's epoch, its row locked until this transaction ends (None: never led).

    The first statement of every transaction that writes a chain's state, so on PostgreSQL it
    also sets that transaction up, in the same round trip (the hot path pays for no other):
    - plans its statements for the values they get (see pool.kit.db.plan_for_given_values);
    - has the server end the session, rolling the transaction back, should it sit idle inside
      it for `idle_timeout_ms` (its process frozen): the next leader waits for this row.
    SQLite has one writer at a time anyway (BEGIN IMMEDIATE), and no FOR UPDATE.
    """
    columns: list[Any] = [chain_leader.c.epoch]
    if conn.dialect.name == "postgresql":
        columns += [
            func.set_config("plan_cache_mode", "force_custom_plan", True),
            func.set_config("idle_in_transaction_session_timeout", str(idle_timeout_ms), True),
        ]
    query = select(*columns).where(chain_leader.c.chain_id == chain_id).with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else int(row[0])


async def leader(conn: AsyncConnection, chain_id: str) -> tuple[int, str] | None:
    """(epoch, holder) of the chain's current leadership, if it was ever taken."""
    row = (
        await conn.execute(
            select(chain_leader.c.epoch, chain_leader.c.holder).where(
                chain_leader.c.chain_id == chain_id
            )
        )
    ).first()
    return (int(row[0]), str(row[1])) if row is not None else None


async def probe_dead_client_after(
    conn: AsyncConnection, *, idle_seconds: int, interval_seconds: int, count: int
) -> None:
    """TCP keepalives for this session: the server finds a vanished client (its host down, the
    network cut) after about idle + interval x count seconds, instead of the operating
    system's default of over two hours, and closes the session (so frees its locks)."""
    await conn.execute(
        text(
            "SELECT set_config('tcp_keepalives_idle', :idle, false),"
            " set_config('tcp_keepalives_interval', :interval, false),"
            " set_config('tcp_keepalives_count', :count, false)"
        ),
        {"idle": str(idle_seconds), "interval": str(interval_seconds), "count": str(count)},
    )


async def end_session_when_idle(conn: AsyncConnection, *, idle_ms: int) -> None:
    """The server ends this session once it has sent nothing for `idle_ms` outside a
    transaction (PostgreSQL 14's idle_session_timeout), and so frees its locks."""
    await conn.execute(
        text("SELECT set_config('idle_session_timeout', :idle, false)"), {"idle": str(idle_ms)}
    )
