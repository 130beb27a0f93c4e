"""Which network a database belongs to: recorded once, by the first process of that network.

A `pk_test_` key must never reach mainnet money, nor a `pk_live_` key work against a testnet
server. Keys name their network in their prefix (the API refuses the other one), and a
database names its own: a process of the other network refuses to use it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.instance import repository as repo
from pool.kit.errors import ConfigurationError, DatabaseNetworkMismatch
from pool.vocabulary import KEY_PREFIXES, Network
from pool.webhooks.events_repository import insert_audit


async def claim_network(
    conn: AsyncConnection, *, network: Network, database: str, actor: str, now: datetime
) -> None:
    """Raise unless the database belongs to `network`; record that it does if nothing is recorded.

    A database from before the record was kept is told by its API keys, so an existing mainnet
    database is not claimed by whichever testnet process happens to open it first. Only a
    process of the database's own network writes the record.
    """
    recorded = await repo.recorded_network(conn)
    if recorded is not None:
        _require(network, belongs_to=recorded, database=database, told_by="")
        return
    told = await _require_by_keys(conn, network=network, database=database)
    if await repo.record_network(conn, network=network, now=now):
        details = {"network": network, "decidedBy": "keys" if told else "first process"}
        await insert_audit(
            conn, actor=actor, action="database.network", subject=network, details=details, now=now
        )
        return
    await check_network(conn, network=network, database=database)  # another process was first


async def require_network(conn: AsyncConnection, *, network: Network, database: str) -> None:
    """Raise unless the database belongs to `network`, as recorded or, with nothing recorded
    yet, as its API keys tell; record nothing (the commands that neither serve nor make keys)."""
    recorded = await repo.recorded_network(conn)
    if recorded is not None:
        _require(network, belongs_to=recorded, database=database, told_by="")
        return
    await _require_by_keys(conn, network=network, database=database)


async def _require_by_keys(
    conn: AsyncConnection, *, network: Network, database: str
) -> Network | None:
    told = await network_told_by_keys(conn, database=database)
    if told is not None:
        _require(network, belongs_to=told, database=database, told_by=_keys_say(told))
    return told


async def check_network(conn: AsyncConnection, *, network: Network, database: str) -> None:
    """Raise if the database is recorded as the other network's; record nothing."""
    recorded = await repo.recorded_network(conn)
    if recorded is not None:
        _require(network, belongs_to=recorded, database=database, told_by="")


async def network_told_by_keys(conn: AsyncConnection, *, database: str) -> Network | None:
    """The network the active keys name (the revoked ones when none is active), or None.

    Active keys of both networks leave it undecided: the operator must choose, by revoking
    the keys of the network the database does not belong to.
    """
    active = _networks(await repo.key_prefixes(conn, active=True))
    if len(active) > 1:
        raise ConfigurationError(
            f"the database at {database} has no network recorded and holds active API keys of "
            "both networks (pk_live_ and pk_test_): revoke those of the network it does not "
            "belong to (addrpool keys list, addrpool keys revoke ID), then start again",
            code="DATABASE_NETWORK_UNDECIDED",
        )
    if active:
        return active.pop()
    revoked = _networks(await repo.key_prefixes(conn, active=False))
    return revoked.pop() if len(revoked) == 1 else None


def _networks(prefixes: set[str]) -> set[Network]:
    return {network for network, prefix in KEY_PREFIXES.items() if prefix in prefixes}


def _keys_say(network: Network) -> str:
    return f", as its {KEY_PREFIXES[network]} API keys show"


def _require(network: Network, *, belongs_to: Network, database: str, told_by: str) -> None:
    if belongs_to != network:
        raise DatabaseNetworkMismatch(
            database=database, belongs_to=belongs_to, running=network, told_by=told_by
        )
