"""The chains addrpool knows by name, as PayIn names them: confirmations, block times, the
stablecoins' contracts and the chain's own coin. chains.presets layers the operator's TOML over
them.

Confirmations follow PayIn's table where it has one (Sepolia 3, Amoy 10, Ethereum 12,
Polygon 128, Tron Nile 3, Tron 19); the others are our choice, written in docs/configuration.md.
Token contracts are the issuers' own deployments; testnet ones should be checked by the
operator (`tokens.USDT.contract = "…"` overrides any of them).
"""

from __future__ import annotations

from dataclasses import dataclass

from pool.vocabulary import Network, Protocol

# Address-poisoning spam sends zero or near-zero amounts; one cent is the default floor.
STABLECOIN_MIN_AMOUNT = "0.01"


@dataclass(frozen=True, slots=True)
class TokenPreset:
    symbol: str
    contract: str
    decimals: int
    min_amount: str = STABLECOIN_MIN_AMOUNT


@dataclass(frozen=True, slots=True)
class NativePreset:
    """A chain's own coin: what `native = true` watches (docs/configuration.md, Native coins)."""

    symbol: str
    min_amount: str  # a few cents' worth: below it a transfer is dust
    decimals: int = 18


ETH = NativePreset("ETH", "0.00001")
BNB = NativePreset("BNB", "0.00005")
POL = NativePreset("POL", "0.05")


@dataclass(frozen=True, slots=True)
class ChainPreset:
    chain_id: str
    protocol: Protocol
    network: Network
    confirmations: int
    block_time: float
    tokens: tuple[TokenPreset, ...] = ()
    # A busy token never goes this many blocks without a Transfer: an empty answer is a bad node.
    suspect_empty_after: int | None = None
    native: NativePreset | None = None


def _usd(symbol: str, contract: str, decimals: int = 6) -> TokenPreset:
    return TokenPreset(symbol, contract, decimals)


PRESETS: dict[str, ChainPreset] = {
    preset.chain_id: preset
    for preset in (
        ChainPreset(
            "ethereum-mainnet",
            "evm",
            "mainnet",
            12,
            12.0,
            (
                _usd("USDT", "0xdAC17F958D2ee523a2206206994597C13D831ec7"),
                _usd("USDC", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
            ),
            suspect_empty_after=50,
            native=ETH,
        ),
        ChainPreset(
            "ethereum-sepolia",
            "evm",
            "testnet",
            3,
            12.0,
            (_usd("USDC", "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"),),
            native=ETH,
        ),
        ChainPreset(
            "polygon-mainnet",
            "evm",
            "mainnet",
            128,
            2.0,
            (
                _usd("USDT", "0xc2132D05D31c914a87C6611C10748AEb04B58e8F"),
                _usd("USDC", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
            ),
            native=POL,
        ),
        ChainPreset(
            "polygon-amoy",
            "evm",
            "testnet",
            10,
            2.0,
            (_usd("USDC", "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582"),),
            native=POL,
        ),
        ChainPreset(
            "arbitrum-mainnet",
            "evm",
            "mainnet",
            20,
            0.25,
            (
                _usd("USDT", "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9"),
                _usd("USDC", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
            ),
            native=ETH,
        ),
        ChainPreset(
            "arbitrum-sepolia",
            "evm",
            "testnet",
            5,
            0.25,
            (_usd("USDC", "0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"),),
            native=ETH,
        ),
        ChainPreset(
            "base-mainnet",
            "evm",
            "mainnet",
            20,
            2.0,
            (_usd("USDC", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),),
            native=ETH,
        ),
        ChainPreset(
            "base-sepolia",
            "evm",
            "testnet",
            5,
            2.0,
            (_usd("USDC", "0x036CbD53842c5426634e7929541eC2318f3dCF7e"),),
            native=ETH,
        ),
        ChainPreset(
            "bsc-mainnet",
            "evm",
            "mainnet",
            15,
            3.0,
            (
                # Binance-Peg stablecoins on BSC have 18 decimals, not 6.
                _usd("USDT", "0x55d398326f99059fF775485246999027B3197955", 18),
                _usd("USDC", "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", 18),
            ),
            native=BNB,
        ),
        ChainPreset("bsc-testnet", "evm", "testnet", 5, 3.0, native=BNB),
        ChainPreset(
            "tron-mainnet",
            "tron",
            "mainnet",
            19,
            3.0,
            (
                _usd("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
                _usd("USDC", "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8"),
            ),
            suspect_empty_after=100,
        ),
        ChainPreset(
            "tron-nile",
            "tron",
            "testnet",
            3,
            3.0,
            (_usd("USDT", "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf"),),
        ),
    )
}
