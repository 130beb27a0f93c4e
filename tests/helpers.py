"""Test helpers: addresses, keys, a pool to bind from."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from chains.evm.address import to_checksum_address
from chains.tron.address import hex20_to_tron
from pool.addresses.import_formats import RawRow
from pool.addresses.importer import ImportSource, import_addresses
from pool.deposits.ledger import ObservedTransfer
from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.vocabulary import Protocol

BACKENDS = ("sqlite", "postgresql")


def random_evm_address() -> str:
    return to_checksum_address(secrets.token_hex(20))


def random_tron_address() -> str:
    return hex20_to_tron(secrets.token_hex(20))


def random_addresses(protocol: Protocol, count: int) -> list[str]:
    make = random_evm_address if protocol == "evm" else random_tron_address
    return [make() for _ in range(count)]


async def load_pool(db: Database, protocol: Protocol, count: int) -> list[str]:
    from chains.codec import address_parser

    addresses = random_addresses(protocol, count)
    async with db.write() as conn:
        await import_addresses(
            conn,
            protocol=protocol,
            rows=[RawRow(n, a) for n, a in enumerate(addresses, start=1)],
            parser=address_parser(protocol),
            source=ImportSource("test", "test"),
            now=utc_now(),
        )
    return addresses


async def make_key(db: Database, *, scopes: Sequence[str] | None, prefix: str = "pk_test_") -> str:
    async with db.write() as conn:
        plaintext, _ = await keys.create_key(
            conn, name="test", scopes=scopes, key_prefix=prefix, actor="test", now=utc_now()
        )
    return plaintext


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def usdt_transfer(to_address: str, tx_byte: str = "ab") -> ObservedTransfer:
    """5 USDT to an EVM pool address in block 10, as the watcher hands it to the ledger."""
    return ObservedTransfer(
        tx_hash="0x" + tx_byte * 32,
        log_index=0,
        block_number=10,
        block_hash="0x" + "cd" * 32,
        from_address="0x" + "11" * 20,
        to_hex20=to_address[2:].lower(),
        token_contract="0x" + "22" * 20,
        currency="USDT",
        decimals=6,
        amount=5_000_000,
        min_amount=1,
    )
