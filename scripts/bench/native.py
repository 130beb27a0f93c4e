"""Native-coin watching: catch-up beside the bare fetch of the same calls, and its cost to a
token watcher.

    .venv/bin/python -m scripts.bench.native [--addresses 1000000] [--blocks 1000] [--repeat 3]
        [--backend sqlite|postgresql]
    smoke run: --addresses 10000 --blocks 100 --repeat 1

All on this machine, all on loopback, SQLite or PostgreSQL (a database of its own, dropped at
the end; `addrpool import` of `--addresses` EVM pool addresses, `--bound` of them bound). The
chain (anvil, automine off while building): every block carries `--payouts` transactions to
`Payer` (scripts/devnet/anvil/payer.py) each paying `--per-tx` recipients (internal
transfers), one plain ETH send (top-level) and one USDT `batchTransfer` of `--per-tx`
recipients (token logs); `--pool-share` of the recipients are pool addresses, the rest
strangers.

Per repetition, in alternating order (each watcher run a fresh chain id, so a fresh cursor):
- `native`: `ChainWatcher.poll()` until caught up, the coin only (no token), call tracer;
- `bare`: the same calls raw — full blocks and call-tracer traces, 20 blocks a batch, through
  `RpcClient.batch` (JSON decoded), nothing matched nor written;
- `tokens`: the watcher with the token only (`native` off);
- `both`: the watcher with the token and the coin.
Figures: blocks/s of each; native ÷ bare (goal ≥ 0.5); both ÷ tokens (what watching the coin
costs a token watcher).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chains.presets import ChainConfig, resolve_chain
from chains.reader import NATIVE_BATCH, trace_call
from chains.rpc import RpcClient
from chains.watch.address_book import AddressBook
from chains.watch.leadership import take_leadership
from chains.watch.runner import settle_heap
from chains.watch.watcher import ChainWatcher
from pool.kit.config import Settings
from pool.kit.db import Database
from scripts.bench.children import clean_env
from scripts.bench.imports import PSQL, timed_import, write_file
from scripts.bench.report import finish, markdown
from scripts.bench.watcher_chain import TOKEN_UNIT, deploy_usdt
from scripts.bench.watcher_pool import bind_first, prepare_backend
from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil

ETH = 10**18
CONFIRMATIONS = 12


def build_chain(
    url: str, args: argparse.Namespace, pool: Sequence[str], rng: random.Random
) -> dict[str, Any]:
    token, sender = deploy_usdt(url)
    payer = anvil.deploy_payer(url)
    strangers = ["0x" + rng.randbytes(20).hex() for _ in range(2_000)]

    def recipients() -> list[str]:
        return [
            rng.choice(pool) if rng.random() < args.pool_share else rng.choice(strangers)
            for _ in range(args.per_tx)
        ]

    started = time.perf_counter()
    anvil.rpc(url, "evm_setAutomine", [False])
    first = anvil.block_number(url) + 1
    for _ in range(args.blocks):
        for _ in range(args.payouts):
            to = recipients()
            anvil.pay(url, payer, to, [rng.randint(1, 100) * 10**15 for _ in to], wait=False)
        anvil.send_value(url, rng.choice(pool), ETH // 100, wait=False)
        to = recipients()
        amounts = [rng.randint(1, 100) * TOKEN_UNIT for _ in to]
        anvil.batch_transfer(url, token, to, amounts, sender, wait=False)
        anvil.mine(url, 1)
    anvil.rpc(url, "evm_setAutomine", [True])
    head = anvil.block_number(url)
    return {
        "token": token,
        "first": first,
        "head": head,
        "build_seconds": round(time.perf_counter() - started, 1),
    }


def chain_config(
    url: str, chain_id: str, chain: dict[str, Any], *, tokens: bool, native: bool
) -> ChainConfig:
    settings: dict[str, Any] = {
        "protocol": "evm",
        "rpc_urls": [url],
        "confirmations": CONFIRMATIONS,
        "block_time": 2.0,
        "start_block": chain["first"],
        "tokens": {"USDT": {"contract": chain["token"], "decimals": 6}} if tokens else {},
        "native": native,
        "native_symbol": "ETH",
        "tracer": "debug",
    }
    return resolve_chain(chain_id, Settings(network="testnet", chains={chain_id: settings}))


async def watcher_run(
    db: Database, book: AddressBook, url: str, chain: dict[str, Any], label: str, **what: bool
) -> dict[str, Any]:
    config = chain_config(url, label, chain, **what)
    client = RpcClient(url, timeout=120.0)
    watcher = ChainWatcher(config, db, book, client, await take_leadership(db, label))
    deposits = 0
    started = time.perf_counter()
    try:
        cursor = chain["first"] - 1
        while cursor < chain["head"]:
            report = await watcher.poll()
            cursor, deposits = report.cursor, deposits + report.deposits
    finally:
        await client.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "deposits": deposits}


async def bare_run(url: str, chain: dict[str, Any]) -> dict[str, Any]:
    """The same calls the native watcher makes for its blocks, decoded and dropped."""
    client = RpcClient(url, timeout=120.0)
    started = time.perf_counter()
    frames = 0
    try:
        for first in range(chain["first"], chain["head"] + 1, NATIVE_BATCH):
            numbers = range(first, min(chain["head"], first + NATIVE_BATCH - 1) + 1)
            calls = [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
            calls += [trace_call("debug", n) for n in numbers]
            frames += len(await client.batch(calls))
    finally:
        await client.close()
    return {"seconds": time.perf_counter() - started, "answers": frames}


async def measure(
    database_url: str, url: str, chain: dict[str, Any], repeat: int
) -> dict[str, list[dict[str, Any]]]:
    db = Database(database_url)
    book = AddressBook("evm")
    await book.refresh(db)
    settle_heap()
    runs: dict[str, list[dict[str, Any]]] = {"native": [], "bare": [], "tokens": [], "both": []}
    kinds = list(runs)
    for repetition in range(repeat):
        order = kinds if repetition % 2 == 0 else kinds[::-1]
        for kind in order:
            label = f"bench-{kind}-{repetition}"
            if kind == "bare":
                result = await bare_run(url, chain)
            else:
                tokens, native = kind in ("tokens", "both"), kind in ("native", "both")
                result = await watcher_run(
                    db, book, url, chain, label, tokens=tokens, native=native
                )
            result["blocks_per_second"] = round(
                (chain["head"] - chain["first"] + 1) / result["seconds"], 1
            )
            runs[kind].append(result)
            print(f"  {kind} #{repetition}: {result['blocks_per_second']} blocks/s", flush=True)
    await db.dispose()
    return runs


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    rate = {k: [r["blocks_per_second"] for r in v] for k, v in runs.items()}
    pairs = zip(rate["native"], rate["bare"], strict=True)
    ratios = [round(n / b, 2) for n, b in pairs]
    costs = [round(b / t, 2) for b, t in zip(rate["both"], rate["tokens"], strict=True)]
    return {
        "median_blocks_per_second": {k: statistics.median(v) for k, v in rate.items()},
        "native_over_bare": ratios,
        "both_over_tokens": costs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1_000_000)
    parser.add_argument("--bound", type=int, default=20)
    parser.add_argument("--pool-recipients", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=1_000)
    parser.add_argument("--payouts", type=int, default=4)
    parser.add_argument("--per-tx", type=int, default=5)
    parser.add_argument("--pool-share", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - reproducible test data, not secrets
    load_start = os.getloadavg()
    pg_database = f"bench_native_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="addrpool-native-") as scratch:
        work = Path(scratch)
        try:
            print(f"generating and importing {args.addresses:,} EVM addresses", flush=True)
            pairs = write_file(work / "pool.txt", "evm", args.addresses)
            backend = prepare_backend(args.backend, work, pg_database)
            imported = timed_import(
                work / "pool.txt", "evm", clean_env(ADDRPOOL_DATABASE_URL=backend.url)
            )
            bound = asyncio.run(bind_first(backend.url, args.bound))
            spare = [text for text, _ in pairs[-(args.pool_recipients - len(bound)) :]]
            with Anvil(extra_args=["--gas-limit", "1000000000"]) as node:
                print(f"building {args.blocks} blocks", flush=True)
                chain = build_chain(node.url, args, [*bound, *spare], rng)
                print("catching up", flush=True)
                runs = asyncio.run(measure(backend.url, node.url, chain, args.repeat))
        finally:
            if args.backend == "postgresql":
                drop = f"DROP DATABASE IF EXISTS {pg_database} WITH (FORCE)"
                subprocess.run([*PSQL, "-d", "postgres", "-c", drop], check=False)
    results = {
        "args": vars(args) | {"json": str(args.json) if args.json else None},
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "import": imported,
        "chain": chain,
        "runs": runs,
        "summary": summary(runs),
    }
    table = markdown(
        ["run", *runs],
        [
            [str(i), *(str(runs[k][i]["blocks_per_second"]) for k in runs)]
            for i in range(args.repeat)
        ],
    )
    return finish(results, args.json, shown=table + "\n" + str(results["summary"]))


if __name__ == "__main__":
    raise SystemExit(main())
