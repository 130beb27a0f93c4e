"""Finding where a reorganisation forked: is our tip still canonical, and which block we kept is
the common ancestor to resume from (see chains.watch.watcher, which rolls back to it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from chains.presets import ChainConfig
from chains.reader import ChainMoved, ChainReader
from pool.alerts.repository import fire_alert
from pool.chain_state import repository as chain_state
from pool.chain_state.repository import Cursor, StoredBlock
from pool.kit.db import Database
from pool.vocabulary import DEEP_REORG

WALK_BACK_BATCH = 16
GENESIS_PARENT = "0x" + "0" * 64


@dataclass(frozen=True, slots=True)
class Ancestor:
    number: int
    hash: str
    deep: bool


async def tip_is_canonical(reader: ChainReader, cursor: Cursor) -> bool:
    if cursor.block_number < 0:
        return True
    try:
        return (await reader.header(cursor.block_number)).hash == cursor.block_hash
    except ChainMoved:
        return False  # the node no longer has our tip: its chain got shorter


async def common_ancestor(
    db: Database, reader: ChainReader, chain: ChainConfig, cursor: Cursor
) -> Ancestor:
    async with db.read() as conn:
        stored = await chain_state.stored_blocks(conn, chain.chain_id)
    candidates = [b for b in stored if b.number <= cursor.block_number]
    if not candidates or candidates[0].number != cursor.block_number:
        candidates.insert(0, StoredBlock(cursor.block_number, cursor.block_hash, ""))
    for i in range(0, len(candidates), WALK_BACK_BATCH):
        chunk = candidates[i : i + WALK_BACK_BATCH]
        canonical = await reader.canonical_hashes([b.number for b in chunk])
        for block in chunk:
            if canonical.get(block.number) == block.hash:
                return Ancestor(block.number, block.hash, deep=False)
    # Nothing we kept is canonical any more. With a full window that is a reorg deeper than
    # we promise to follow (alert); with a young one, just older than what we kept so far.
    # Either way rescan from below it: if that is not canonical either, the next poll's tip
    # check walks further back.
    deep = len(candidates) >= chain.window
    lowest = candidates[-1].number - 1
    if lowest < 0:
        return Ancestor(-1, GENESIS_PARENT, deep=deep)
    return Ancestor(lowest, (await reader.header(lowest)).hash, deep=deep)


async def alert_deep_reorg(
    conn: AsyncConnection, *, chain_id: str, cursor: Cursor, ancestor: Ancestor, now: datetime
) -> None:
    await fire_alert(
        conn,
        kind=DEEP_REORG,
        subject=f"{DEEP_REORG}:{chain_id}",
        severity="critical",
        value=str(cursor.block_number - ancestor.number),
        details={
            "chainId": chain_id,
            "fromBlock": cursor.block_number,
            "toBlock": ancestor.number,
        },
        now=now,
    )
