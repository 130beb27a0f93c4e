"""Drive a watcher poll by poll against anvil, with the pool and the chain at hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, text

from chains.codec import address_parser
from chains.presets import ChainConfig, resolve_chain
from chains.rpc import RpcClient
from chains.tron.address import hex20_to_tron
from chains.watch import leadership
from chains.watch.address_book import AddressBook
from chains.watch.watcher import ChainWatcher
from pool.bindings import service as allocation
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import alert, deposit, event
from pool.vocabulary import Protocol
from scripts.devnet import anvil
from tests.fixtures.devnet import Devnet

CONFIRMATIONS = 3
USDT = 1_000_000  # one token, 6 decimals


def chain_config(devnet: Devnet, protocol: Protocol = "evm", **overrides: Any) -> ChainConfig:
    """A custom chain on the devnet; as `tron`, anvil stands in for java-tron's JSON-RPC."""
    chain = chain_settings(devnet, protocol, **overrides)
    return resolve_chain("devnet", Settings(network="testnet", chains={"devnet": chain}))


def chain_settings(devnet: Devnet, protocol: Protocol = "evm", **overrides: Any) -> dict[str, Any]:
    """The `[chains.devnet]` table of that chain, for whole Settings."""
    contract = (lambda a: hex20_to_tron(a[2:].lower())) if protocol == "tron" else (lambda a: a)
    return {
        "protocol": protocol,
        "rpc_urls": [devnet.url],
        "confirmations": CONFIRMATIONS,
        "start_block": anvil.block_number(devnet.url) + 1,
        "tokens": {
            "USDT": {"contract": contract(devnet.usdt), "decimals": 6, "min_amount": "0.01"},
            "USDC": {"contract": contract(devnet.usdc), "decimals": 6, "min_amount": "0.01"},
        },
        **overrides,
    }


class Harness:
    """One watcher driven poll by poll, with the pool and the chain at hand."""

    def __init__(
        self,
        db: Database,
        devnet: Devnet,
        pool: list[str],
        chain: ChainConfig,
        client: RpcClient | None = None,
    ) -> None:
        self.db = db
        self.devnet = devnet
        self.pool = pool
        self.chain = chain
        self.client = client or RpcClient(chain.rpc_urls[0])
        self._watcher: ChainWatcher | None = None

    async def lead(self) -> ChainWatcher:
        """The watcher, leading the chain from its first use on, as an elected worker's does
        (any watcher that led before is fenced out from then on)."""
        if self._watcher is None:
            leader = await leadership.take_leadership(self.db, self.chain.chain_id)
            book = AddressBook(self.chain.protocol)
            self._watcher = ChainWatcher(self.chain, self.db, book, self.client, leader)
        return self._watcher

    @property
    def watcher(self) -> ChainWatcher:
        assert self._watcher is not None, "poll (or lead) first"
        return self._watcher

    async def poll(self) -> Any:
        return await (await self.lead()).poll()

    async def poll_to_head(self, most: int = 3) -> Any:
        """Poll until a poll ends with the cursor at the head. A poll whose scan meets the
        chain moving under it (ChainMoved) rolls back and leaves the rescan to the next poll,
        as a worker's next poll a second later would: on a loaded machine, one poll after a
        reorg has left a transfer brought back by it unrecorded."""
        for _ in range(most):
            report = await self.poll()
            if report.cursor == report.head:
                return report
        raise AssertionError(f"the watcher was not at the head after {most} polls: {report}")

    def send(self, to: str, amount: int = USDT, token: str | None = None) -> str:
        """`to` in either protocol's text: the chain itself only knows the 20 bytes."""
        recipient = "0x" + address_parser(self.chain.protocol)(to).hex20
        return anvil.transfer(self.devnet.url, token or self.devnet.usdt, recipient, amount)

    def mine(self, blocks: int) -> None:
        anvil.mine(self.devnet.url, blocks)

    async def bind(self, reference: str) -> str:
        async def work(conn: Any) -> Any:
            return await allocation.bind(
                conn,
                reference=reference,
                protocol=self.chain.protocol,
                metadata=None,
                actor="t",
                now=utc_now(),
            )

        return (await self.db.run_write(work)).binding.address

    async def unbind(self, reference: str) -> None:
        async with self.db.write() as conn:
            await allocation.unbind(
                conn, actor="t", now=utc_now(), cooldown=timedelta(days=7), reference=reference
            )

    async def deposits(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(deposit).order_by(deposit.c.block_number, deposit.c.log_index)
            )
            return [dict(r._mapping) for r in rows.all()]

    async def events(self) -> list[tuple[str, str, str]]:
        """(type, depositId, status) of every outbox event, in order."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(event.c.type, event.c.data).order_by(event.c.seq))
            return [
                (kind, data.get("depositId"), data.get("status"))
                for kind, data in rows.all()
                if kind.startswith("deposit.") and "depositId" in data
            ]

    async def alerts(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [dict(r._mapping) for r in (await conn.execute(select(alert))).all()]


async def terminate_lock_backend(db: Database, chain_id: str) -> int:
    """pg_terminate_backend the session that holds the chain's advisory lock; its pid."""
    query = text(
        "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"
    )
    async with db.autocommit() as conn:
        pid = await conn.scalar(query, {"key": leadership.lock_key(chain_id)})
        assert pid is not None, "nobody holds the chain's lock"
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return int(pid)
