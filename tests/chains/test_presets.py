import pytest
from pydantic import ValidationError

from chains.presets import (
    PRESETS,
    NativeCoin,
    configured_chains,
    monitored_chains,
    resolve_chain,
    unwatched_chains,
)
from pool.kit.config import Settings
from pool.kit.errors import ConfigurationError


def settings(**chains) -> Settings:
    return Settings(network="testnet", chains=chains)


def test_payin_confirmations_are_the_presets() -> None:
    expected = {
        "ethereum-sepolia": 3,
        "polygon-amoy": 10,
        "ethereum-mainnet": 12,
        "polygon-mainnet": 128,
        "tron-nile": 3,
        "tron-mainnet": 19,
    }
    assert {name: PRESETS[name].confirmations for name in expected} == expected


def test_every_preset_token_parses_for_its_protocol() -> None:
    for chain_id, preset in PRESETS.items():
        chain = resolve_chain(chain_id, Settings(network=preset.network))
        assert len(chain.tokens) == len(preset.tokens)
        for token in chain.tokens:
            assert len(token.hex20) == 40
            assert token.min_amount == 10 ** (token.decimals - 2)  # one cent


def test_bsc_stablecoins_have_18_decimals() -> None:
    chain = resolve_chain("bsc-mainnet", Settings(network="mainnet"))
    assert {t.symbol: t.decimals for t in chain.tokens} == {"USDT": 18, "USDC": 18}


def test_toml_overrides_confirmations_tokens_and_poll_interval() -> None:
    chain = resolve_chain(
        "ethereum-sepolia",
        settings(
            **{
                "ethereum-sepolia": {
                    "rpc_urls": ["http://127.0.0.1:8545"],
                    "confirmations": 5,
                    "poll_interval": 0.5,
                    "tokens": {
                        "USDC": {"min_amount": "1"},
                        "USDT": {
                            "contract": "0x7169d38820dfd117c3fa1f22a697dba58d90ba06",
                            "decimals": 6,
                        },
                    },
                }
            }
        ),
    )
    assert chain.confirmations == 5
    assert chain.poll_interval == 0.5
    assert chain.window == 256
    tokens = {t.symbol: t for t in chain.tokens}
    assert tokens["USDC"].min_amount == 1_000_000
    assert tokens["USDT"].contract == "0x7169D38820dfd117C3FA1f22a697dBA58d90BA06"


def test_a_preset_token_can_be_switched_off() -> None:
    chain = resolve_chain(
        "ethereum-mainnet",
        Settings(
            network="mainnet", chains={"ethereum-mainnet": {"tokens": {"USDT": {"enabled": False}}}}
        ),
    )
    assert [t.symbol for t in chain.tokens] == ["USDC"]


def test_default_poll_interval_is_half_the_block_time_but_at_least_a_second() -> None:
    assert resolve_chain("ethereum-sepolia", settings()).poll_interval == 6.0
    assert resolve_chain("arbitrum-sepolia", settings()).poll_interval == 1.0


def test_window_is_at_least_twice_the_confirmations() -> None:
    assert resolve_chain("polygon-mainnet", Settings(network="mainnet")).window == 256
    chain = resolve_chain("x", settings(x={"protocol": "evm", "confirmations": 300}))
    assert chain.window == 600


def test_zero_min_amount_still_makes_zero_value_transfers_dust() -> None:
    chain = resolve_chain(
        "c",
        settings(
            c={
                "protocol": "evm",
                "tokens": {"T": {"contract": "0x" + "11" * 20, "decimals": 6, "min_amount": "0"}},
            }
        ),
    )
    assert chain.tokens[0].min_amount == 1


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ({"decimals": 6}, "needs a contract and decimals"),
        ({"contract": "0x" + "11" * 20}, "needs a contract and decimals"),
        ({"contract": "not-an-address", "decimals": 6}, "token T"),
        (
            {"contract": "0x" + "11" * 20, "decimals": 2, "min_amount": "0.001"},
            "more than 2 decimals",
        ),
    ],
)
def test_bad_custom_tokens_are_clear_errors(token, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_chain("c", settings(c={"protocol": "evm", "tokens": {"T": token}}))


def test_misspelt_chain_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="rpc_url"):
        settings(**{"ethereum-sepolia": {"rpc_url": "http://127.0.0.1:8545"}})


def test_unwatched_chains_say_why() -> None:
    config = settings(
        **{
            "ethereum-sepolia": {"rpc_urls": ["http://127.0.0.1:8545"]},
            "bsc-testnet": {"rpc_urls": ["http://127.0.0.1:8546"]},
        }
    )
    reasons = unwatched_chains(config)
    assert "ethereum-sepolia" not in reasons
    assert reasons["bsc-testnet"] == "no token configured"
    assert reasons["polygon-amoy"] == "no RPC URL configured"
    assert "ethereum-mainnet" not in reasons  # another network's chains are not ours
    assert monitored_chains(config) == {"evm": ["ethereum-sepolia"], "tron": []}
    assert [c.chain_id for c in configured_chains(config)] == ["bsc-testnet", "ethereum-sepolia"]


def test_native_coins_of_the_presets_and_their_overrides() -> None:
    def coin(chain_id: str, network: str = "testnet", **native: object) -> NativeCoin:
        chain = resolve_chain(
            chain_id, Settings(network=network, chains={chain_id: {"native": True, **native}})
        )
        assert chain.native is not None
        return chain.native

    assert coin("ethereum-mainnet", "mainnet") == NativeCoin("ETH", 18, 10**13)
    assert coin("bsc-testnet").symbol == "BNB"
    assert coin("polygon-amoy").symbol == "POL"
    assert coin("base-sepolia", native_min_amount="0").min_amount == 1
    assert coin("my-chain", protocol="evm", native_symbol="GLMR", native_decimals=18) == (
        NativeCoin("GLMR", 18, 1)
    )
    assert resolve_chain("ethereum-sepolia", Settings(network="testnet")).native is None
    with pytest.raises(ConfigurationError, match="native_symbol"):
        coin("my-chain", protocol="evm")
    with pytest.raises(ConfigurationError, match="TRX"):
        coin("tron-nile")


def test_a_chain_watching_only_its_coin_is_watched() -> None:
    only_coin = {"rpc_urls": ["http://127.0.0.1:8545"], "native": True}
    given = settings(**{"bsc-testnet": only_coin})
    assert monitored_chains(given)["evm"] == ["bsc-testnet"]
    assert "bsc-testnet" not in unwatched_chains(given)
