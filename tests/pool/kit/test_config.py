import re
from datetime import timedelta

import pytest

from chains.presets import monitored_chains
from pool.kit.config import Settings, load_settings
from pool.kit.db import Database, async_url
from pool.kit.errors import ConfigurationError

TOML = """
network = "testnet"
cooldown = "P3D"
database_url = "sqlite:///from-toml.db"

[chains.ethereum-sepolia]
rpc_urls = ["http://127.0.0.1:8545"]

[chains.polygon-amoy]
rpc_urls = []

[chains.my-devnet]
protocol = "tron"
rpc_urls = ["http://127.0.0.1:9090/jsonrpc"]
confirmations = 2

[chains.my-devnet.tokens.USDT]
contract = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
decimals = 6
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "addrpool.toml"
    path.write_text(TOML)
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(path))
    for name in ("ADDRPOOL_DATABASE_URL", "ADDRPOOL_NETWORK", "ADDRPOOL_COOLDOWN"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_toml_file_is_read_and_environment_wins(config_file, monkeypatch) -> None:
    settings = load_settings()
    assert settings.cooldown == timedelta(days=3)
    assert settings.database_url == "sqlite:///from-toml.db"
    monkeypatch.setenv("ADDRPOOL_DATABASE_URL", "postgresql://u@h:5432/d")
    monkeypatch.setenv("ADDRPOOL_COOLDOWN", "60")
    settings = load_settings()
    assert settings.database_url == "postgresql://u@h:5432/d"
    assert settings.cooldown == timedelta(seconds=60)


def test_monitored_chains_are_those_with_rpc_urls(config_file) -> None:
    assert monitored_chains(load_settings()) == {"evm": ["ethereum-sepolia"], "tron": ["my-devnet"]}


def test_a_chain_of_the_other_network_is_refused(config_file, monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_NETWORK", "mainnet")
    with pytest.raises(ConfigurationError, match="ethereum-sepolia is a testnet chain"):
        monitored_chains(load_settings())


def test_key_prefix_follows_the_network() -> None:
    assert Settings(network="testnet").key_prefix == "pk_test_"
    assert Settings(network="mainnet").key_prefix == "pk_live_"


def test_missing_named_config_file_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigurationError, match="absent.toml .* does not exist"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///addrpool.db", "sqlite+aiosqlite"),
        ("postgresql://postgres@127.0.0.1:5432/x", "postgresql+asyncpg"),
        ("postgres://postgres@127.0.0.1/x", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@h/x", "postgresql+asyncpg"),
    ],
)
def test_database_urls_get_our_drivers(given, driver) -> None:
    assert async_url(given).drivername == driver


@pytest.mark.parametrize("given", ["mysql://u@h/x", "not a url", "redis://localhost"])
def test_unsupported_database_urls_are_refused(given) -> None:
    with pytest.raises(ConfigurationError):
        async_url(given)


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://testnet.payin.com/api/v1", "https://testnet.payin.com"),  # as PayIn documents it
        ("https://testnet.payin.com/api/v1/", "https://testnet.payin.com"),
        ("https://testnet.payin.com", "https://testnet.payin.com"),
        ("https://testnet.payin.com/", "https://testnet.payin.com"),
        ("https://gw.example:8443/payin/api/v1", "https://gw.example:8443/payin"),  # a proxy
        ("https://gw.example/payin/", "https://gw.example/payin"),
        (" http://127.0.0.1:9000/api/v1 ", "http://127.0.0.1:9000"),
    ],
)
def test_the_upstream_url_is_kept_as_the_root_of_payins_api(given, root, monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_UPSTREAM_URL", given)
    assert load_settings().upstream_url == root


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("https://testnet.payin.com/api/v1/deposits/bind", "names one of PayIn's endpoints"),
        ("https://testnet.payin.com/api/v1?key=1", "no query"),
        ("https://user:s3cret@testnet.payin.com/api/v1/deposits", "names one of PayIn's"),
        ("testnet.payin.com/api/v1", "not an http"),
        ("ftp://testnet.payin.com", "not an http"),
    ],
)
def test_an_upstream_url_that_cannot_work_is_one_clear_error(given, message, monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_UPSTREAM_URL", given)
    with pytest.raises(ConfigurationError, match=message) as refused:
        load_settings()
    assert str(refused.value).startswith("invalid configuration: upstream_url: ")
    assert "\n" not in str(refused.value)
    assert "s3cret" not in str(refused.value) and "key=1" not in str(refused.value)


@pytest.mark.parametrize(
    ("setting", "value", "refusal"),
    [
        ("alerts.margin", "10", "must be a fraction from 0 to 1 (0.1 = 10 %); 10 would be 1000 %"),
        (
            "alerts.margin",
            "-0.1",
            "must be a fraction from 0 to 1 (0.1 = 10 %); -0.1 would be -10 %",
        ),
        (
            "alerts.percent_thresholds",
            "{ evm = 500 }",
            "evm = 500 is not a percentage from 0 to 100 (5 = 5 %)",
        ),
        (
            "reconcile.duty_cycle",
            "10",
            "must be a fraction above 0 and at most 1 (0.1 = 10 %); 10 would be 1000 %",
        ),
    ],
)
def test_a_fraction_or_percentage_out_of_range_is_refused_in_its_unit(
    tmp_path, monkeypatch, setting: str, value: str, refusal: str
) -> None:
    section, key = setting.split(".")
    path = tmp_path / "addrpool.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(path))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.message == (
        f"invalid configuration: {setting}: {refusal} (read from {path} and ADDRPOOL_* variables)"
    )


def test_fractions_and_percentages_in_range_are_taken(monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_ALERTS__PERCENT_THRESHOLDS", '{"evm": 100, "tron": 0}')
    for margin in ("0", "0.5", "1"):
        monkeypatch.setenv("ADDRPOOL_ALERTS__MARGIN", margin)
        assert load_settings().alerts.margin == float(margin)
    assert load_settings().alerts.percent_thresholds == {"evm": 100, "tron": 0}


@pytest.mark.parametrize(
    ("environment", "said"),
    [
        ({"ADDRPOOL_NETWRK": "mainnet"}, "ADDRPOOL_NETWRK is not a setting (did you mean ADDRPOOL_NETWORK?)"),
        ({"ADDRPOOL_X": "1"}, "ADDRPOOL_X is not a setting (docs/"),
        ({"addrpool_databse_url": "x"}, "addrpool_databse_url is not a setting (did you mean ADDRPOOL_DATABASE_URL?)"),
    ],
)  # fmt: skip
def test_unknown_environment_variables_are_refused(environment, said) -> None:
    from pool.kit.config import check_environment

    with pytest.raises(ConfigurationError, match=re.escape(said)):
        check_environment(environment)


def test_variables_of_settings_and_of_the_project_are_known() -> None:
    from pool.kit.config import check_environment

    check_environment(
        {
            "ADDRPOOL_CONFIG": "x.toml",
            "ADDRPOOL_TEST_POSTGRES_URL": "postgresql://x",
            "ADDRPOOL_ANVIL": "/bin/anvil",
            "ADDRPOOL_DATABASE_URL": "sqlite:///x.db",
            "ADDRPOOL_RECONCILE__INTERVAL": "60",
            "PATH": "/bin",
        }
    )


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ({"rpc_urls": ["wss://rpc.example"]}, "is not an http(s) URL"),
        ({"rpc_urls": ["https://"]}, "is not an http(s) URL"),
        ({"rpc_urls": ["https://user:pw@"]}, "is not an http(s) URL"),
    ],
)
def test_rpc_urls_are_http_urls_when_the_configuration_loads(section, said) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(said)) as refused:
        load_settings(chains={"ethereum-sepolia": section})
    assert "pw" not in str(refused.value)


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"cooldown": "-PT1S"}, "cooldown: must not be negative"),
        ({"reconcile": {"window": 0}}, "reconcile.window: must be a positive duration"),
        ({"alerts": {"evaluate_every": "PT0S"}}, "alerts.evaluate_every: must be a positive"),
        ({"alerts": {"thresholds": {"evm": -1}}}, "alerts.thresholds.evm: Input should be greater than or equal to 0"),
        ({"reconcile": {"grace": "-PT1S"}}, "reconcile.grace: must not be negative"),
        ({"log_level": "LOUD"}, "'LOUD' is not a log level"),
    ],
)  # fmt: skip
def test_values_are_checked_when_the_configuration_loads(overrides, said) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        load_settings(**overrides)


def test_zero_cooldown_and_a_lower_case_log_level_are_fine() -> None:
    settings = load_settings(cooldown=0, log_level="debug")
    assert (settings.cooldown, settings.log_level) == (timedelta(0), "DEBUG")


def test_a_pooled_database_needs_a_direct_url_for_its_locks() -> None:
    pooled = "postgresql://addrpool@127.0.0.1:6432/addrpool"
    with pytest.raises(ValueError, match="database_pooled = true needs ADDRPOOL_DATABASE_SESSION"):
        Settings(database_url=pooled, database_pooled=True)
    with pytest.raises(ConfigurationError, match="DATABASE_SESSION_URL"):
        Database(pooled, pooled=True)
