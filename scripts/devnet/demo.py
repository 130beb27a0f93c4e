"""`addrpool devnet`: a whole working system on one machine, for trying addrpool out.

`up` starts anvil on loopback (mining a block every few seconds so confirmations advance),
deploys test USDT and USDC, writes a devnet chain config, imports a few hundred addresses,
creates an admin key and serves API + watcher. `send` transfers test tokens to an address, as
a customer's wallet would. Everything lives in one state directory (default `./.devnet`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import stat
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from chains.codec import address_parser
from chains.evm.address import to_checksum_address
from pool.addresses.import_formats import RawRow
from pool.addresses.importer import ImportSource, import_addresses
from pool.instance.service import claim_network
from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.config import Settings, load_settings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from scripts.cli.database import describe_database
from scripts.devnet import anvil
from scripts.run import server

CHAIN_ID = "devnet"
CONFIRMATIONS = 3
DECIMALS = 6
CUSTOMER_FUNDS = 10**9 * 10**DECIMALS  # a billion of each token


@dataclass(frozen=True)
class DevnetState:
    """What `send` needs to know about the running devnet (written by `up`)."""

    rpc_url: str
    tokens: dict[str, str]
    customer: str


def up(args: argparse.Namespace) -> int:
    state_dir: Path = args.dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    _forget_previous_run(state_dir)
    node = anvil.Anvil(block_time=args.block_time, log_path=state_dir / "anvil.log").start()
    try:
        state = _deploy(node.url)
        (state_dir / "devnet.json").write_text(json.dumps(asdict(state), indent=2) + "\n")
        config = _write_config(state_dir, state, port=args.port)
        os.environ["ADDRPOOL_CONFIG"] = str(config)
        settings = load_settings()
        key = asyncio.run(_prepare_database(settings, args.addresses))
        _save_key(state_dir, key)
        _announce(state_dir, state, settings.port, key, args.addresses)
        server.run(settings, workers=1, with_watchers=True)
    finally:
        node.stop()
    return 0


def send(args: argparse.Namespace) -> int:
    state = _load_state(args.dir)
    token = state.tokens[args.token]
    recipient = to_checksum_address(address_parser("evm")(args.to).hex20)
    units = int(Decimal(args.amount).scaleb(DECIMALS))
    tx_hash = anvil.transfer(state.rpc_url, token, recipient, units, sender=state.customer)
    print(f"sent {args.amount} {args.token} to {recipient}: {tx_hash}")
    return 0


def _forget_previous_run(state_dir: Path) -> None:
    """A fresh chain each time: last run's database would point at blocks that no longer exist."""
    for name in ("addrpool.db", "addrpool.db-wal", "addrpool.db-shm", "api-key"):
        (state_dir / name).unlink(missing_ok=True)


def _deploy(url: str) -> DevnetState:
    customer = anvil.accounts(url)[1]
    tokens = {
        symbol: anvil.deploy_token(url, name=name, symbol=symbol, decimals=DECIMALS)
        for symbol, name in (("USDT", "Tether USD (devnet)"), ("USDC", "USD Coin (devnet)"))
    }
    for token in tokens.values():
        anvil.mint(url, token, customer, CUSTOMER_FUNDS)
    return DevnetState(url, tokens, customer)


def _write_config(state_dir: Path, state: DevnetState, *, port: int) -> Path:
    token_tables = "".join(
        f'\n[chains.{CHAIN_ID}.tokens.{symbol}]\ncontract = "{contract}"\n'
        f'decimals = {DECIMALS}\nmin_amount = "0.01"\n'
        for symbol, contract in state.tokens.items()
    )
    config = state_dir / "addrpool.toml"
    config.write_text(
        "# Written by `addrpool devnet`; rewritten on every start.\n"
        'network = "testnet"\n'
        "# Webhooks to http:// and loopback receivers: a devnet convenience, never in production.\n"
        "webhook_allow_private = true\n"
        f'database_url = "sqlite:///{state_dir / "addrpool.db"}"\n'
        f"port = {port}\n"
        f"\n[chains.{CHAIN_ID}]\n"
        'protocol = "evm"\n'
        f'rpc_urls = ["{state.rpc_url}"]\n'
        f"confirmations = {CONFIRMATIONS}\n"
        "poll_interval = 1.0\n"
        "start_block = 0\n" + token_tables
    )
    return config


async def _prepare_database(settings: Settings, addresses: int) -> str:
    db = Database(settings.database_url, pool_size=2)
    try:
        await upgrade(db)
        async with db.write() as conn:
            await claim_network(
                conn,
                network=settings.network,
                database=describe_database(db),
                actor="devnet",
                now=utc_now(),
            )
            rows = [
                RawRow(line, to_checksum_address(secrets.token_hex(20)))
                for line in range(1, addresses + 1)
            ]
            await import_addresses(
                conn,
                protocol="evm",
                rows=rows,
                parser=address_parser("evm"),
                source=ImportSource("devnet", "addrpool devnet"),
                now=utc_now(),
            )
            plaintext, _ = await keys.create_key(
                conn,
                name="devnet",
                scopes=["admin"],
                key_prefix=settings.key_prefix,
                actor="devnet",
                now=utc_now(),
            )
        return plaintext
    finally:
        await db.dispose()


def _save_key(state_dir: Path, key: str) -> None:
    """Testnet only: the demo's README commands read the key from here."""
    path = state_dir / "api-key"
    path.write_text(key + "\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def _announce(state_dir: Path, state: DevnetState, port: int, key: str, addresses: int) -> None:
    print(f"devnet: anvil at {state.rpc_url} (log {state_dir / 'anvil.log'})")
    for symbol, contract in state.tokens.items():
        print(f"devnet: {symbol} at {contract}")
    print(f"devnet: {addresses} pool addresses imported; admin key in {state_dir / 'api-key'}")
    print(f"devnet: API key {key}")
    print(f"devnet: try  curl -s -X POST http://127.0.0.1:{port}/api/v1/deposits/bind ...")


def _load_state(state_dir: Path) -> DevnetState:
    path = state_dir / "devnet.json"
    if not path.is_file():
        raise SystemExit(f"no devnet state at {path}: start one with `addrpool devnet up`")
    data = json.loads(path.read_text())
    return DevnetState(data["rpc_url"], dict(data["tokens"]), data["customer"])
