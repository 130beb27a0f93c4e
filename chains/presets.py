"""The chains a deployment watches: the known chains (chains.known_chains) with the operator's
TOML layered over them, resolved into what the watcher, the orders and the CLI need."""

from __future__ import annotations

from dataclasses import dataclass, field

from chains.codec import address_parser
from chains.known_chains import PRESETS, ChainPreset, NativePreset, TokenPreset
from pool.kit.amounts import parse_units
from pool.kit.config import ChainSettings, Settings, TokenSettings
from pool.kit.config_sections import Tracer
from pool.kit.errors import AddrpoolError, ConfigurationError
from pool.orders.records import OrderChain, OrderToken
from pool.vocabulary import NATIVE_CONTRACT, PROTOCOLS, TRON, Network, Protocol

MIN_WINDOW = 256
# TronGrid refuses log ranges above 5,000 blocks; mainnet's USDT traffic makes even 100 blocks
# tens of thousands of logs (docs/performance.md), so the working default is far below the cap.
TRON_BLOCK_RANGE_CAP = 5_000
TRON_MAX_BLOCK_RANGE = 100
# A worker holds every log of a range until it commits, so its peak memory grows with the range:
# this default keeps it modest (figures: docs/performance.md, Watcher).
DEFAULT_MAX_BLOCK_RANGE = 500
DEFAULT_RPC_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    contract: str  # canonical text: EIP-55 or base58 `T…`
    hex20: str  # lower-case 40 hex: what logs carry
    decimals: int
    min_amount: int  # base units; below it a transfer is dust


@dataclass(frozen=True, slots=True)
class NativeCoin:
    symbol: str
    decimals: int
    min_amount: int  # base units (wei); below it a transfer is dust


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """Everything the watcher needs to know about one chain."""

    chain_id: str
    protocol: Protocol
    network: Network
    confirmations: int
    block_time: float
    poll_interval: float
    rpc_urls: tuple[str, ...]
    tokens: tuple[Token, ...]
    start_block: int | None
    max_block_range: int
    rpc_timeout: float
    check_receipts: bool = field(default=False)
    suspect_empty_after: int | None = None
    max_lag: int = 5
    native: NativeCoin | None = None  # None: the chain's coin is not watched
    tracer: Tracer = "auto"

    @property
    def window(self) -> int:
        """Recent block hashes kept for reorg detection (invariant 7, docs/design.md)."""
        return max(MIN_WINDOW, 2 * self.confirmations)

    @property
    def watched(self) -> bool:
        return bool(self.rpc_urls) and (bool(self.tokens) or self.native is not None)


def resolve_chain(chain_id: str, settings: Settings) -> ChainConfig:
    """A preset with the operator's overrides, or a custom chain fully declared in TOML."""
    override = settings.chains.get(chain_id) or ChainSettings()
    preset = PRESETS.get(chain_id) or _custom_preset(chain_id, override, settings)
    protocol = override.protocol or preset.protocol
    block_time = override.block_time or preset.block_time
    tokens = _tokens(chain_id, protocol, preset.tokens, override.tokens)
    native = _native(chain_id, protocol, preset.native, override)
    if native is not None and native.symbol in {t.symbol for t in tokens}:
        # A currency names one thing on a chain: orders and deposits are told apart by it.
        raise ConfigurationError(f"chain {chain_id}: {native.symbol} is its coin and a token")
    return ChainConfig(
        chain_id=chain_id,
        protocol=protocol,
        network=override.network or preset.network,
        confirmations=override.confirmations or preset.confirmations,
        block_time=block_time,
        # Half the block time, never faster than once a second (docs/design.md, Chains).
        poll_interval=override.poll_interval or max(1.0, block_time / 2),
        rpc_urls=tuple(override.rpc_urls),
        tokens=tokens,
        start_block=override.start_block,
        max_block_range=_block_range(protocol, override.max_block_range),
        rpc_timeout=override.rpc_timeout or DEFAULT_RPC_TIMEOUT,
        # A failed Tron transaction can still carry logs; an EVM one cannot.
        check_receipts=protocol == TRON,
        suspect_empty_after=override.suspect_empty_after or preset.suspect_empty_after,
        max_lag=override.max_lag or 5,
        native=native,
        tracer=override.tracer,
    )


def _native(
    chain_id: str, protocol: Protocol, preset: NativePreset | None, override: ChainSettings
) -> NativeCoin | None:
    """The chain's coin when `native = true`: the preset's symbol and decimals, overridable."""
    if not override.native:
        return None
    if protocol == TRON:
        # TRX moves in TransferContract transactions and internal transactions, neither of
        # which the JSON-RPC reads show (docs/design.md, Native coins).
        raise ConfigurationError(f"chain {chain_id}: native TRX deposits are not supported")
    symbol = override.native_symbol or (preset.symbol if preset else None)
    if symbol is None:
        raise ConfigurationError(f"chain {chain_id}: native = true needs a native_symbol")
    decimals = override.native_decimals
    if decimals is None:
        decimals = preset.decimals if preset else 18
    min_amount = override.native_min_amount or (preset.min_amount if preset else "0")
    try:
        min_units = parse_units(min_amount, decimals)
    except (AddrpoolError, ValueError) as exc:
        raise ConfigurationError(f"chain {chain_id}: native_min_amount: {exc}") from exc
    # "Any amount above zero" is the floor even when an operator sets 0 (Invariant 11).
    return NativeCoin(symbol, decimals, max(1, min_units))


def _block_range(protocol: Protocol, configured: int | None) -> int:
    if protocol != TRON:
        return configured or DEFAULT_MAX_BLOCK_RANGE
    return min(configured or TRON_MAX_BLOCK_RANGE, TRON_BLOCK_RANGE_CAP)


def _custom_preset(chain_id: str, override: ChainSettings, settings: Settings) -> ChainPreset:
    if override.protocol is None:
        raise ConfigurationError(f"chain {chain_id!r} is not a preset and declares no protocol")
    return ChainPreset(
        chain_id,
        override.protocol,
        override.network or settings.network,
        override.confirmations or 12,
        override.block_time or 12.0,
    )


def _tokens(
    chain_id: str,
    protocol: Protocol,
    presets: tuple[TokenPreset, ...],
    overrides: dict[str, TokenSettings],
) -> tuple[Token, ...]:
    merged = {token.symbol: token for token in presets}
    for symbol, override in overrides.items():
        if not override.enabled:
            merged.pop(symbol, None)
            continue
        merged[symbol] = _merge_token(chain_id, symbol, merged.get(symbol), override)
    return tuple(_token(chain_id, protocol, preset) for preset in merged.values())


def _merge_token(
    chain_id: str, symbol: str, preset: TokenPreset | None, override: TokenSettings
) -> TokenPreset:
    contract = override.contract or (preset.contract if preset else None)
    decimals = override.decimals if override.decimals is not None else None
    if decimals is None and preset is not None:
        decimals = preset.decimals
    if contract is None or decimals is None:
        raise ConfigurationError(f"chain {chain_id}: token {symbol} needs a contract and decimals")
    min_amount = override.min_amount or (preset.min_amount if preset else "0")
    return TokenPreset(symbol, contract, decimals, min_amount)


def _token(chain_id: str, protocol: Protocol, preset: TokenPreset) -> Token:
    try:
        parsed = address_parser(protocol)(preset.contract)
        min_units = parse_units(preset.min_amount, preset.decimals)
    except (AddrpoolError, ValueError) as exc:
        raise ConfigurationError(f"chain {chain_id}: token {preset.symbol}: {exc}") from exc
    # "Any amount above zero" is the floor even when an operator sets 0 (Invariant 11).
    return Token(preset.symbol, parsed.text, parsed.hex20, preset.decimals, max(1, min_units))


def configured_chains(settings: Settings) -> list[ChainConfig]:
    """Every chain named in the settings, checked against our network.

    A chain of the other network is refused: one instance serves one network
    (docs/design.md).
    """
    chains = [resolve_chain(chain_id, settings) for chain_id in sorted(settings.chains)]
    for chain in chains:
        if chain.network != settings.network:
            raise ConfigurationError(
                f"chain {chain.chain_id} is a {chain.network} chain; this instance runs on "
                f"{settings.network} (ADDRPOOL_NETWORK)"
            )
    return chains


def watched_chains(settings: Settings) -> list[ChainConfig]:
    return [chain for chain in configured_chains(settings) if chain.watched]


def monitored_chains(settings: Settings) -> dict[Protocol, list[str]]:
    """Chain ids actually watched (an RPC URL and at least one token), per protocol."""
    watched: dict[Protocol, list[str]] = {protocol: [] for protocol in PROTOCOLS}
    for chain in watched_chains(settings):
        watched[chain.protocol].append(chain.chain_id)
    return watched


def unwatched_chains(settings: Settings) -> dict[str, str]:
    """chain id → why it is not watched: what `/health` reports for this network."""
    reasons: dict[str, str] = {}
    names = {*settings.chains, *(c for c, p in PRESETS.items() if p.network == settings.network)}
    for chain_id in sorted(names):
        chain = resolve_chain(chain_id, settings)
        if not chain.rpc_urls:
            reasons[chain_id] = "no RPC URL configured"
        elif not chain.tokens and chain.native is None:
            reasons[chain_id] = "no token configured"
    return reasons


def order_chains(settings: Settings) -> dict[str, OrderChain]:
    """The chains an order may name: configured and watched (RPC URLs and a token), so that its
    payment will be seen; each with its tokens' contracts and decimals and its confirmations,
    and its coin when watched (contract `native`, as its deposits carry)."""
    return {
        chain.chain_id: OrderChain(
            chain.chain_id, chain.protocol, chain.confirmations, _order_currencies(chain)
        )
        for chain in watched_chains(settings)
    }


def _order_currencies(chain: ChainConfig) -> dict[str, OrderToken]:
    currencies = {t.symbol: OrderToken(t.symbol, t.contract, t.decimals) for t in chain.tokens}
    coin = chain.native
    if coin is not None:  # its symbol is no token's (resolve_chain)
        currencies[coin.symbol] = OrderToken(coin.symbol, NATIVE_CONTRACT, coin.decimals)
    return currencies
