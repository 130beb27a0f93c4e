"""Settings: environment (`ADDRPOOL_` prefix) over an optional TOML file over defaults.

Strict on purpose: a misspelt key (`databse_url`) silently ignored would leave the default in
force, which for `database_url` means a fresh, empty `./addrpool.db` in production. Unknown keys
and unknown `ADDRPOOL_` variables are refused with the closest valid name.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from pool.kit.config_limits import RateLimitSettings as RateLimitSettings
from pool.kit.config_limits import WindowLimits as WindowLimits
from pool.kit.config_sections import (
    AlertSettings as AlertSettings,
)
from pool.kit.config_sections import (
    ChainSettings as ChainSettings,
)
from pool.kit.config_sections import (
    CheckoutSettings as CheckoutSettings,
)
from pool.kit.config_sections import (
    ConsoleSettings as ConsoleSettings,
)
from pool.kit.config_sections import (
    HookSettings as HookSettings,
)
from pool.kit.config_sections import (
    OrderSettings as OrderSettings,
)
from pool.kit.config_sections import (
    ReconcileSettings as ReconcileSettings,
)
from pool.kit.config_sections import (
    RefillSettings as RefillSettings,
)
from pool.kit.config_sections import (
    TokenSettings as TokenSettings,
)
from pool.kit.config_sections import (
    _seconds_or_iso,
)
from pool.kit.errors import ConfigurationError
from pool.vocabulary import KEY_PREFIXES, Network

DEFAULT_CONFIG_FILE = Path("addrpool.toml")
ENV_PREFIX = "ADDRPOOL_"
# `ADDRPOOL_` variables that are not settings, read by the project itself (docs/configuration.md):
# never refused as unknown.
NOT_SETTINGS = frozenset({"ADDRPOOL_CONFIG", "ADDRPOOL_ANVIL", "ADDRPOOL_TEST_POSTGRES_URL"})


class Settings(BaseSettings):
    # Errors never repeat input values: a configuration holds keys, passwords and RPC URLs.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,
    )

    database_url: str = "sqlite:///addrpool.db"
    network: Network = "testnet"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    cooldown: timedelta = timedelta(days=7)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Address imports over the API: a million EVM addresses as JSON is about 45 MB.
    max_import_bytes: int = Field(default=134_217_728, ge=1024)
    db_pool_size: int = Field(default=20, ge=1, le=200)
    # PostgreSQL through a transaction-pooling PgBouncer (docs/scaling.md): `database_url` names
    # the pooler; `database_session_url` the server itself, for the few connections that keep
    # session state (the watchers' advisory locks), which a transaction pooler cannot keep.
    database_pooled: bool = False
    database_session_url: str | None = None
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    log_level: str = "INFO"
    # "json": one JSON object per line (for log shippers); "text": plain lines for a terminal.
    log_format: Literal["json", "text"] = "json"
    # One line per request: method, route template, status, duration, key id (never the key).
    access_log: bool = True
    secret_key: SecretStr | None = None
    # http:// and private/loopback webhook targets: for tests and the devnet only.
    webhook_allow_private: bool = False
    # `GET /metrics` (Prometheus): served without an API key unless a token is set.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    chains: dict[str, ChainSettings] = Field(default_factory=dict)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    refill: RefillSettings = Field(default_factory=RefillSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    checkout: CheckoutSettings = Field(default_factory=CheckoutSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    # The base URL payers reach (https://pay.example.com): orders' `paymentUrl` starts with it.
    # Unset: the scheme and host of the request that created the order.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url_is_a_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("it is not an http(s) URL, e.g. https://pay.example.com")
        if parts.query or parts.fragment:
            raise ValueError("a base URL takes no query or fragment")
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    # Who allocates addresses: addrpool from its own pool, or a hosted PayIn (upstream mode).
    binding_backend: Literal["local", "payin"] = "local"
    # PayIn's base URL as it documents it (https://testnet.payin.com/api/v1) or its host root;
    # kept as the root the client adds `/api/v1/...` to (upstream_api_root).
    upstream_url: str | None = None
    upstream_api_key: SecretStr | None = None
    upstream_timeout: float = Field(default=10.0, gt=0, le=120)
    upstream_retries: int = Field(default=2, ge=0, le=10)  # after the first try; 5xx/timeouts
    # The secret PayIn signs its webhooks with; `POST <path>` takes them in upstream mode.
    upstream_webhook_secret: SecretStr | None = None
    upstream_webhook_path: str = Field(default="/webhooks/payin", pattern=r"^/[A-Za-z0-9/_.-]*$")
    upstream_replay_window: int = Field(default=300, ge=1)  # seconds, timestamped scheme
    # How long PayIn may take to announce a deposit we saw before it is reported missing.
    upstream_grace: timedelta = timedelta(minutes=30)

    @model_validator(mode="after")
    def _a_pooled_database_needs_a_session_url(self) -> Settings:
        if self.database_pooled and not self.database_session_url:
            raise ValueError(
                "database_pooled = true needs ADDRPOOL_DATABASE_SESSION_URL: a direct connection "
                "to PostgreSQL for the watchers' locks, which a transaction pooler cannot hold"
            )
        return self

    @model_validator(mode="after")
    def _upstream_needs_its_address_and_key(self) -> Settings:
        if self.binding_backend == "payin" and not (self.upstream_url and self.upstream_api_key):
            raise ValueError(
                "binding_backend = payin needs ADDRPOOL_UPSTREAM_URL and ADDRPOOL_UPSTREAM_API_KEY"
            )
        return self

    @field_validator("upstream_url")
    @classmethod
    def _upstream_url_is_its_root(cls, value: str | None) -> str | None:
        return upstream_api_root(value) if value else None

    @field_validator("upstream_grace", mode="before")
    @classmethod
    def _grace_in_seconds_too(cls, value: Any) -> Any:
        return _seconds_or_iso(value)

    @field_validator("cooldown", mode="before")
    @classmethod
    def _seconds_are_a_duration_too(cls, value: Any) -> Any:
        return _seconds_or_iso(value)

    @field_validator("cooldown", "upstream_grace")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative (ISO 8601 such as P7D, or seconds)")
        return value

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, value: str) -> str:
        levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        if value.upper() not in levels:
            raise ValueError(f"{value!r} is not a log level: one of {', '.join(levels)}")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.network]


def _config_file() -> Path | None:
    """`ADDRPOOL_CONFIG` (or `--config`, which sets it) names the TOML file; otherwise
    `./addrpool.toml` if it exists."""
    named = os.environ.get("ADDRPOOL_CONFIG")
    if named:
        path = Path(named)
        if path.is_dir():
            raise ConfigurationError(
                f"the configuration file {path} (--config or ADDRPOOL_CONFIG) is a directory: "
                "name a TOML file"
            )
        if not path.is_file():
            raise ConfigurationError(
                f"the configuration file {path} (--config or ADDRPOOL_CONFIG) does not exist"
            )
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


UPSTREAM_API = "/api/v1"


def upstream_api_root(url: str) -> str:
    """Where PayIn's `/api/v1/...` paths go: `https://host`, or a reverse proxy's prefix.

    PayIn documents its base URL with the version (`https://testnet.payin.com/api/v1`), and
    operators copy it; the bare host works too. A trailing `/api/v1` and trailing slashes are
    dropped; any other path is a prefix and kept (`https://gw.example/payin`). A URL naming
    one of PayIn's endpoints, or with a query, is refused: every request would be a 404.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("it is not an http(s) URL, e.g. https://testnet.payin.com/api/v1")
    host = parts.netloc.rpartition("@")[2]  # an error never repeats credentials or a query
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.query or parts.fragment:
        raise ValueError(f"{shown!r}: PayIn's base URL takes no query or fragment")
    path = parts.path.rstrip("/")
    path = path.removesuffix(UPSTREAM_API)
    if f"{UPSTREAM_API}/" in f"{path}/":
        raise ValueError(
            f"{shown!r} names one of PayIn's endpoints; give its base URL, e.g. "
            f"{parts.scheme}://{host}{UPSTREAM_API}"
        )
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def load_settings(**overrides: Any) -> Settings:
    """The settings, or a ConfigurationError naming each bad key in one line (the command
    prints it instead of a traceback)."""
    check_environment(os.environ)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid configuration: {_describe(exc)}{_from_file()}") from exc
    except SettingsError as exc:
        # pydantic-settings names the field and the source, not the value.
        raise ConfigurationError(
            f"{exc}: a section set from one {ENV_PREFIX}* variable takes JSON, e.g. "
            f'{ENV_PREFIX}RATE_LIMITS__SCOPES=\'{{"pool:write": {{"per_second": 50}}}}\''
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib says where ("(at line 3, column 7)") but not in which file.
        raise ConfigurationError(
            f"{_config_file()} is not valid TOML: {exc}; fix that line"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the configuration file {_config_file()}: {exc.strerror or exc}"
        ) from exc


def database_url_origin() -> str:
    """Where `database_url` came from, for a message that must say how it was found."""
    if any(name.upper() == f"{ENV_PREFIX}DATABASE_URL" for name in os.environ):
        return f"{ENV_PREFIX}DATABASE_URL"
    config_file = _config_file()
    if config_file is None:
        return (
            "the default: no ADDRPOOL_DATABASE_URL, and no configuration file (--config, "
            "ADDRPOOL_CONFIG, or ./addrpool.toml)"
        )
    with config_file.open("rb") as toml:
        if "database_url" in tomllib.load(toml):
            return str(config_file)
    return f"the default: neither ADDRPOOL_DATABASE_URL nor {config_file} sets it"


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse an `ADDRPOOL_` variable that names no setting: pydantic-settings would ignore it.

    A nested one (`ADDRPOOL_RECONCILE__INTERVL`) is checked by its section's own model.
    """
    known = {name.upper() for name in Settings.model_fields}
    problems = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NOT_SETTINGS:
            continue
        name = upper.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if name in known:
            continue
        # Compared without the prefix, which every candidate shares.
        candidates = sorted(known) + [name.removeprefix(ENV_PREFIX) for name in NOT_SETTINGS]
        guess = _closest(upper.removeprefix(ENV_PREFIX), candidates, prefix=ENV_PREFIX)
        problems.append(f"{variable} is not a setting{guess}")
    if problems:
        raise ConfigurationError(
            f"unknown environment variable: {'; '.join(problems)} "
            "(docs/configuration.md lists them)"
        )


def _closest(name: str, candidates: list[str], *, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _from_file() -> str:
    try:
        config_file = _config_file()
    except ConfigurationError:
        return ""
    return f" (read from {config_file} and ADDRPOOL_* variables)" if config_file else ""


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            valid = _keys_at(error["loc"][:-1])
            key = str(error["loc"][-1])
            problems.append(f"{where}: unknown key{_closest(key, sorted(valid))}")
            continue
        if error["type"].startswith("time_delta"):
            problems.append(
                f"{where}: {error['input']!r}{_variable(error['loc'])} is not a duration: "
                "use ISO 8601 (P7D, PT10M) or a number of seconds"
            )
            continue
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def _variable(loc: tuple[int | str, ...]) -> str:
    """` (from ADDRPOOL_COOLDOWN?)`: the variable that may have set a plain setting or a
    section's, as a hint where the value came from."""
    if len(loc) > 2 or loc[0] == "chains" or not all(isinstance(part, str) for part in loc):
        return ""
    return f" (from {ENV_PREFIX}{'__'.join(str(part) for part in loc).upper()}?)"


def _keys_at(loc: tuple[int | str, ...]) -> set[str]:
    """The valid keys of the section at `loc` (`("chains", "ethereum", "tokens", "USDT")`)."""
    model: type[BaseModel] = Settings
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(str(part))
        if field is None:
            return set()
        nested = _model_inside(field.annotation)
        if nested is None:
            return set()
        if field.annotation is not nested and parts:
            parts.pop(0)  # a chain id, a token symbol or a hook's index
        model = nested
    return set(model.model_fields)


def _model_inside(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or the values of its dict or list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_inside(argument)
        if found is not None:
            return found
    return None
