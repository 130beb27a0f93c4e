"""Known chains, named as PayIn names them. Pure data: the watcher issue adds tokens and RPC.

Confirmations follow PayIn's table where it has one (Sepolia 3, Amoy 10, Ethereum 12,
Polygon 128, Tron Nile 3, Tron 19); the others are our choice, written in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pool.config import Settings
from pool.domain import PROTOCOLS, Protocol
from pool.errors import ConfigurationError

Network = Literal["testnet", "mainnet"]


@dataclass(frozen=True, slots=True)
class ChainPreset:
    chain_id: str
    protocol: Protocol
    network: Network
    confirmations: int


PRESETS: dict[str, ChainPreset] = {
    preset.chain_id: preset
    for preset in (
        ChainPreset("ethereum-mainnet", "evm", "mainnet", 12),
        ChainPreset("ethereum-sepolia", "evm", "testnet", 3),
        ChainPreset("polygon-mainnet", "evm", "mainnet", 128),
        ChainPreset("polygon-amoy", "evm", "testnet", 10),
        ChainPreset("arbitrum-mainnet", "evm", "mainnet", 20),
        ChainPreset("arbitrum-sepolia", "evm", "testnet", 5),
        ChainPreset("base-mainnet", "evm", "mainnet", 20),
        ChainPreset("base-sepolia", "evm", "testnet", 5),
        ChainPreset("bsc-mainnet", "evm", "mainnet", 15),
        ChainPreset("bsc-testnet", "evm", "testnet", 5),
        ChainPreset("tron-mainnet", "tron", "mainnet", 19),
        ChainPreset("tron-nile", "tron", "testnet", 3),
    )
}


def resolve_chain(chain_id: str, settings: Settings) -> ChainPreset:
    """A preset with the operator's overrides, or a custom chain fully declared in TOML."""
    override = settings.chains.get(chain_id)
    preset = PRESETS.get(chain_id)
    if preset is None:
        if override is None or override.protocol is None:
            raise ConfigurationError(f"chain {chain_id!r} is not a preset and declares no protocol")
        return ChainPreset(chain_id, override.protocol, override.network or settings.network, 0)
    if override is None:
        return preset
    return ChainPreset(
        chain_id,
        override.protocol or preset.protocol,
        override.network or preset.network,
        preset.confirmations,
    )


def monitored_chains(settings: Settings) -> dict[Protocol, list[str]]:
    """Chains actually watched, per protocol: configured with an RPC URL, on our network.

    A chain of the other network is refused: one instance serves one network (DESIGN.md).
    """
    watched: dict[Protocol, list[str]] = {protocol: [] for protocol in PROTOCOLS}
    for chain_id, override in sorted(settings.chains.items()):
        chain = resolve_chain(chain_id, settings)
        if chain.network != settings.network:
            raise ConfigurationError(
                f"chain {chain_id} is a {chain.network} chain; this instance runs on "
                f"{settings.network} (ADDRPOOL_NETWORK)"
            )
        if override.rpc_urls:
            watched[chain.protocol].append(chain_id)
    return watched
