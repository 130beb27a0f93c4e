"""The reconciliation benchmark's chain: real recent deposits on anvil, recorded by the watcher.

The test USDT is deployed, `history_blocks` empty blocks mined (the heights the synthetic
history claims), then one plain `transfer` per recent deposit to a freshly bound pool address,
`per_block` of them a block (automine off), then `confirmations` more blocks. The real
`ChainWatcher` polls until its cursor reaches the head: deposits, events and confirmations are
written as in production, so the chain re-reads find real receipts and block hashes.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from chains.presets import ChainConfig, resolve_chain
from chains.rpc import RpcClient
from chains.watch.address_book import AddressBook
from chains.watch.leadership import take_leadership
from chains.watch.watcher import ChainWatcher
from pool.kit.config import ChainSettings, ReconcileSettings, Settings, TokenSettings
from pool.kit.db import Database
from scripts.bench.reconcile_data import CHAIN_ID
from scripts.bench.watcher_chain import TOKEN_UNIT, deploy_usdt
from scripts.devnet import anvil

# anvil_mine of thousands of blocks at once can outlast the RPC timeout on a busy machine.
MINE_CHUNK = 500
SECRET_KEY = "bench-reconcile-not-a-secret"  # noqa: S105 - seals the bench endpoint's webhook secret


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """What a process needs to configure the watched chain (saved as JSON for children)."""

    url: str
    token: str
    start_block: int
    confirmations: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RecentDeposits:
    first_block: int
    last_block: int
    head: int
    transfers: int
    send_seconds: float
    catch_up_seconds: float


def bench_settings(
    database_url: str, chain: ChainSpec, *, chain_reads: int, duty_cycle: float = 1.0
) -> Settings:
    """Everything explicit: no ADDRPOOL_ variable or addrpool.toml changes what is measured."""
    token = TokenSettings(contract=chain.token, decimals=6, min_amount="0.01")
    watched = ChainSettings(
        protocol="evm",
        rpc_urls=[chain.url],
        confirmations=chain.confirmations,
        block_time=2.0,
        start_block=chain.start_block,
        tokens={"USDT": token},
    )
    return Settings(
        database_url=database_url,
        network="testnet",
        secret_key=SECRET_KEY,
        log_level="WARNING",
        chains={CHAIN_ID: watched},
        reconcile=ReconcileSettings(chain_reads=chain_reads, duty_cycle=duty_cycle),
    )


def chain_config(settings: Settings) -> ChainConfig:
    return resolve_chain(CHAIN_ID, settings)


def prepare_chain(url: str, *, history_blocks: int, confirmations: int) -> ChainSpec:
    """Token deployed and funded, then the empty stretch the synthetic history lives in."""
    token, _sender = deploy_usdt(url)
    for start in range(0, history_blocks, MINE_CHUNK):
        anvil.mine(url, min(MINE_CHUNK, history_blocks - start))
    return ChainSpec(url, token, anvil.block_number(url) + 1, confirmations)


def send_recent(chain: ChainSpec, recipients: list[str], *, per_block: int) -> tuple[int, int]:
    """One transfer per recipient, `per_block` a block; (first block, last block)."""
    rng = random.Random(3)  # noqa: S311 - reproducible amounts
    sender = anvil.accounts(chain.url)[0]
    anvil.rpc(chain.url, "evm_setAutomine", [False])
    first = anvil.block_number(chain.url) + 1
    for start in range(0, len(recipients), per_block):
        for to in recipients[start : start + per_block]:
            amount = rng.randint(1, 500) * TOKEN_UNIT
            anvil.transfer(chain.url, chain.token, to, amount, sender, wait=False)
        anvil.mine(chain.url, 1)
    last = anvil.block_number(chain.url)
    anvil.mine(chain.url, chain.confirmations)
    return first, last


async def catch_up(settings: Settings, db: Database) -> int:
    """Poll the real watcher until its cursor is at the head; the head."""
    chain = chain_config(settings)
    client = RpcClient(chain.rpc_urls[0], timeout=60.0)
    leadership = await take_leadership(db, chain.chain_id)
    watcher = ChainWatcher(chain, db, AddressBook(chain.protocol), client, leadership)
    try:
        while True:
            report = await watcher.poll()
            if report.cursor >= report.head:
                return report.head
    finally:
        await client.close()


async def recent_deposits(
    settings: Settings, db: Database, chain: ChainSpec, recipients: list[str], per_block: int
) -> RecentDeposits:
    began = time.perf_counter()
    first, last = send_recent(chain, recipients, per_block=per_block)
    sent = time.perf_counter()
    head = await catch_up(settings, db)
    caught_up = time.perf_counter()
    return RecentDeposits(
        first, last, head, len(recipients), round(sent - began, 1), round(caught_up - sent, 1)
    )
