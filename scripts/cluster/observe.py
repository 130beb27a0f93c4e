"""What the cluster holds and what the devnet really did (docs/scaling.md): the database's
deposits, leadership and logged ranges read straight from PostgreSQL, and the chain truth —
the transfers the fault scripts made — every fault is checked against."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from scripts.cluster.processes import Process
from scripts.cluster.topology import CHAIN_ID, CONFIRMATIONS, Cluster
from scripts.devnet import anvil

DEADLINE = 120.0


class FaultCheckFailed(AssertionError):
    """A guarantee the fault broke (or a step that did not happen in time)."""


def expect(condition: object, detail: object = "") -> None:
    if not condition:
        raise FaultCheckFailed(detail)


UNIT = 10**6  # one token (6 decimals)


# -- what the cluster holds, and the chain truth --------------------------------------------


def query(cluster: Cluster, sql: str, *args: Any) -> list[asyncpg.Record]:
    """One query straight to the server (not through the pooler, not through addrpool)."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(cluster.direct_url, timeout=5)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def leader(cluster: Cluster) -> tuple[int, int] | None:
    """(epoch, pid) of the chain's current leadership."""
    rows = query(cluster, "SELECT epoch, holder FROM chain_leader WHERE chain_id = $1", CHAIN_ID)
    if not rows:
        return None
    return int(rows[0]["epoch"]), int(rows[0]["holder"].rsplit(":", 1)[1])


def cursor(cluster: Cluster) -> int:
    rows = query(cluster, "SELECT block_number FROM chain_cursor WHERE chain_id = $1", CHAIN_ID)
    return int(rows[0]["block_number"]) if rows else -1


def worker_of(cluster: Cluster, pid: int) -> Process:
    [found] = [w for w in cluster.worker_processes if w.alive() and w.pid == pid]
    return found


@dataclass
class Transfer:
    tx_hash: str
    to: str
    amount: int


@dataclass
class ChainTruth:
    """Every transfer made to a pool address, in the order made."""

    transfers: list[Transfer] = field(default_factory=list)

    def send(self, cluster: Cluster, to: str, amount: int) -> None:
        tx = anvil.transfer(cluster.rpc_url, cluster.token, to, amount)
        self.transfers.append(Transfer(tx, to.lower(), amount))

    def settled(self, cluster: Cluster) -> bool:
        """Every transfer recorded and confirmed, and the cursor at the chain's head."""
        rows = query(
            cluster, "SELECT tx_hash FROM deposit WHERE status IN ('confirmed', 'completed')"
        )
        confirmed = {r["tx_hash"] for r in rows}
        head = anvil.block_number(cluster.rpc_url)
        return cursor(cluster) == head and confirmed >= {t.tx_hash for t in self.transfers}

    def wait_settled(self, cluster: Cluster, deadline: float = DEADLINE) -> None:
        anvil.mine(cluster.rpc_url, CONFIRMATIONS)
        cluster.until(lambda: self.settled(cluster), "every deposit confirmed", deadline)

    def check(self, cluster: Cluster) -> int:
        """The deposits are exactly the transfers, each announced once per kind; returns how
        many."""
        rows = query(
            cluster,
            "SELECT d.tx_hash, lower(a.address) AS address, d.amount::text AS amount"
            " FROM deposit d JOIN address a ON a.id = d.address_id",
        )
        recorded = Counter((r["tx_hash"], r["address"], int(r["amount"])) for r in rows)
        made = Counter((t.tx_hash, t.to, t.amount) for t in self.transfers)
        expect(recorded == made, f"deposits unlike the chain: {recorded - made} {made - recorded}")
        events = query(cluster, "SELECT type, data->>'depositId' AS id FROM event")
        announced = Counter((e["type"], e["id"]) for e in events if e["id"] is not None)
        expect(set(announced.values()) <= {1}, "a deposit announced twice")
        kinds = Counter(kind for kind, _ in announced)
        expect(kinds["deposit.pending"] == kinds["deposit.confirmed"] == len(self.transfers), kinds)
        return len(self.transfers)


@dataclass(frozen=True)
class Range:
    start: int
    end: int
    epoch: int
    worker: str


def ranges(cluster: Cluster, since_block: int) -> list[Range]:
    """The ranges every worker logged (after committing them) from `since_block` on."""
    found = []
    for process in cluster.worker_processes:
        for line in process.text().splitlines():
            if '"range scanned"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the line being written right now
            if entry["block_from"] >= since_block:
                found.append(
                    Range(entry["block_from"], entry["block_to"], entry["epoch"], process.name)
                )
    return sorted(set(found), key=lambda r: (r.start, r.epoch))


def check_one_writer(cluster: Cluster, since_block: int, killed: str | None = None) -> int:
    """From `since_block` to the head, each block in exactly one committed range, epochs never
    going down along the chain; returns how many epochs wrote.

    A worker killed between a commit and its log line (`killed`) leaves one hole in the logs,
    not in the chain: allowed once, no longer than a range, where its epoch gives way to the next.
    """
    written = ranges(cluster, since_block)
    expect(written, "no range written")
    holes = 0
    for before, after in zip(written, written[1:], strict=False):
        expect(after.epoch >= before.epoch, f"an old epoch wrote after a new one: {before} {after}")
        if after.start == before.end + 1:
            continue
        lost_line = (
            before.worker == killed
            and after.epoch > before.epoch
            and 0 < after.start - before.end - 1 <= cluster.max_block_range
        )
        expect(lost_line and holes == 0, f"two writers or a gap: {before} then {after}")
        holes += 1
    return len({r.epoch for r in written})
