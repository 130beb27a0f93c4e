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
    NonNegativeInt,
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

from pool.kit.errors import ConfigurationError
from pool.vocabulary import KEY_PREFIXES, ApiScope, Network, Protocol

DEFAULT_CONFIG_FILE = Path("addrpool.toml")
ENV_PREFIX = "ADDRPOOL_"
# `ADDRPOOL_` variables that are not settings, read by the project itself (docs/configuration.md):
# never refused as unknown.
NOT_SETTINGS = frozenset({"ADDRPOOL_CONFIG", "ADDRPOOL_ANVIL", "ADDRPOOL_TEST_POSTGRES_URL"})
# Free addresses below which `pool_low` fires: as PayIn's guide sets them, for EVM and Tron.
DEFAULT_THRESHOLDS: dict[Protocol, int] = {"evm": 200, "tron": 100}


class TokenSettings(BaseModel):
    """A token watched on a chain; overrides a preset token field by field."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    contract: str | None = None
    decimals: int | None = Field(default=None, ge=0, le=77)
    # Token units as a decimal string ("0.01"); a transfer below it is dust (invariant 11,
    # docs/design.md).
    min_amount: str | None = None
    # `enabled = false` drops a preset token (TOML has no null).
    enabled: bool = True


class ChainSettings(BaseModel):
    """What an operator adds to a chain preset (or declares for a custom chain)."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    rpc_urls: list[str] = Field(default_factory=list)
    protocol: Protocol | None = None
    network: Network | None = None
    confirmations: int | None = Field(default=None, ge=1, le=10_000)
    block_time: float | None = Field(default=None, gt=0)
    poll_interval: float | None = Field(default=None, gt=0)
    # Where a chain seen for the first time starts; default: its head at that moment.
    start_block: int | None = Field(default=None, ge=0)
    max_block_range: int | None = Field(default=None, ge=1)
    rpc_timeout: float | None = Field(default=None, gt=0)
    # An endpoint more than this many blocks behind the best one is set aside.
    max_lag: int | None = Field(default=None, ge=1)
    # An empty log answer over this many blocks marks the endpoint suspect (busy tokens only).
    suspect_empty_after: int | None = Field(default=None, ge=1)
    tokens: dict[str, TokenSettings] = Field(default_factory=dict)

    @field_validator("rpc_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            _require_http_url(url)
        return urls


def _require_http_url(url: str) -> None:
    """Refused when the configuration loads, not at the first request made with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{_url_head(url)!r} is not an http(s) URL, e.g. https://host:8545")


def _url_head(url: str) -> str:
    """What an error may show of a URL: its scheme and host, never the path, query or
    credentials (providers put API keys there)."""
    parts = urlsplit(url)
    if parts.hostname:
        return (
            f"{parts.scheme}://{parts.hostname}/…"
            if parts.path
            else f"{parts.scheme}://{parts.hostname}"
        )
    head, slash, _ = url.partition("/")
    return head[:40] + ("/…" if slash else "")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration (ISO 8601 such as PT10M, or seconds)")
    return value


def _not_a_fraction(value: float, allowed: str) -> str:
    """Why a fraction setting was refused, in its unit: `margin = 10` reads as 10 % to a person
    and is 1000 % to the rule."""
    return f"must be a fraction {allowed} (0.1 = 10 %); {value:g} would be {value * 100:g} %"


def _seconds_or_iso(value: Any) -> Any:
    """`3600` means seconds; ISO 8601 (`P7D`, `PT10M`) works as well."""
    if isinstance(value, str) and value.strip().isdigit():
        return timedelta(seconds=int(value))
    return value


class ReconcileSettings(BaseModel):
    """The reconciliation worker (`[reconcile]` in TOML, `ADDRPOOL_RECONCILE__*`)."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    enabled: bool = True
    interval: timedelta = timedelta(minutes=10)
    # Deposits detected this recently are compared; older ones were settled long ago.
    window: timedelta = timedelta(days=7)
    # How long a confirmed deposit may wait for every receiver's acknowledgement.
    grace: timedelta = timedelta(minutes=15)
    # The most recent deposits whose receipts are re-read from the chain on each run.
    chain_reads: int = Field(default=1000, ge=0, le=100_000)
    # Failed deliveries sent back to pending per run, and per delivery over its life.
    requeue_limit: int = Field(default=500, ge=0)
    max_requeues: int = Field(default=3, ge=0)
    # Pending longer than max(this, 3 x confirmations x block time) means a stuck watcher.
    stuck_after: timedelta = timedelta(minutes=10)
    # The share of the time a run keeps busy; it rests the rest between its steps, so binds on
    # the same box barely notice it (pool.kit.pacing). 1 runs flat out.
    duty_cycle: float = 0.1

    @field_validator("interval", "window", "grace", "stuck_after", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _seconds_or_iso(value)

    @field_validator("interval", "window", "stuck_after")
    @classmethod
    def _positive_durations(cls, value: timedelta) -> timedelta:
        return _positive(value)

    @field_validator("grace")
    @classmethod
    def _no_negative_grace(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):  # 0: an unacknowledged confirmed deposit is reported at once
            raise ValueError("must not be negative (ISO 8601 such as PT10M, or seconds)")
        return value

    @field_validator("duty_cycle")
    @classmethod
    def _a_share_of_the_time(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(_not_a_fraction(value, "above 0 and at most 1"))
        return value


class HookSettings(BaseModel):
    """Where alert firings and resolutions go, besides the log and the webhook event."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    name: str = Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["http", "command"]
    # http: a Slack-style incoming webhook or any receiver of JSON
    url: str | None = None
    # http: when set, X-Addrpool-Signature = hex HMAC-SHA256 of the body with this secret
    secret: SecretStr | None = None
    # command: argv of a program that reads the alert as JSON on stdin
    command: list[str] | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)

    # The url is judged where hooks are checked at start-up (`check_hook_urls`): https to a
    # public address, with a message naming the hook and the setting that allows otherwise.

    @model_validator(mode="after")
    def _target_matches_type(self) -> HookSettings:
        if self.type == "http" and not self.url:
            raise ValueError(f"hook {self.name}: an http hook needs a url")
        if self.type == "command" and not self.command:
            raise ValueError(f"hook {self.name}: a command hook needs a command")
        return self


class AlertSettings(BaseModel):
    """Alert rules and hooks (`[alerts]` in TOML, `ADDRPOOL_ALERTS__*`)."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    # Off: no rule is evaluated and no hook is called (records raised elsewhere are kept).
    enabled: bool = True
    # Free addresses below this fire `pool_low:<protocol>` (PayIn's defaults).
    thresholds: dict[Protocol, NonNegativeInt] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS)
    )
    # Free addresses below this percentage of the protocol's pool fire it too; 0 = off.
    percent_thresholds: dict[Protocol, float] = Field(default_factory=dict)
    # Hysteresis: resolves only once free addresses are back above threshold x (1 + margin).
    margin: float = 0.1
    # Projected exhaustion from the bind rate of the last `bind_rate_window`.
    exhaustion_horizon: timedelta = timedelta(hours=72)
    bind_rate_window: timedelta = timedelta(hours=24)
    # A watcher this many blocks behind its head, or silent this long, fires.
    watcher_lag_blocks: int = Field(default=100, ge=1)
    watcher_stall_after: timedelta = timedelta(minutes=5)
    # More failed delivery attempts than this to one endpoint within the window fires.
    webhook_failures: int = Field(default=10, ge=1)
    webhook_failures_window: timedelta = timedelta(minutes=15)
    # An endpoint whose oldest undelivered event has been failing this long fires, however few
    # the attempts (backoff keeps a dead receiver at low traffic under `webhook_failures`).
    webhook_failing_after: timedelta = Field(default=timedelta(minutes=10), gt=timedelta(0))
    # The timer for rules that time alone can trigger (cooldowns ending, a stalled watcher).
    evaluate_every: timedelta = timedelta(seconds=30)
    hooks: list[HookSettings] = Field(default_factory=list)
    # HTTP hooks to http:// or private addresses (an internal pager gateway, the devnet); off,
    # they are held to webhooks' rule: https to public addresses only (pool.alerts.hooks).
    hooks_allow_private: bool = False

    @field_validator(
        "exhaustion_horizon",
        "bind_rate_window",
        "watcher_stall_after",
        "webhook_failures_window",
        "webhook_failing_after",
        "evaluate_every",
        mode="before",
    )
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _seconds_or_iso(value)

    @field_validator(
        "exhaustion_horizon",
        "bind_rate_window",
        "watcher_stall_after",
        "webhook_failures_window",
        "evaluate_every",
    )
    @classmethod
    def _positive_durations(cls, value: timedelta) -> timedelta:
        return _positive(value)

    @field_validator("margin")
    @classmethod
    def _margin_is_a_fraction(cls, value: float) -> float:
        if not 0 <= value <= 1:
            raise ValueError(_not_a_fraction(value, "from 0 to 1"))
        return value

    @field_validator("percent_thresholds")
    @classmethod
    def _percentages(cls, values: dict[Protocol, float]) -> dict[Protocol, float]:
        for protocol, value in values.items():
            if not 0 <= value <= 100:
                raise ValueError(
                    f"{protocol} = {value:g} is not a percentage from 0 to 100 (5 = 5 %)"
                )
        return values

    @field_validator("hooks")
    @classmethod
    def _unique_names(cls, hooks: list[HookSettings]) -> list[HookSettings]:
        names = [hook.name for hook in hooks]
        if len(names) != len(set(names)):
            raise ValueError("alert hook names must be unique")
        return hooks

    def threshold(self, protocol: Protocol) -> int:
        return self.thresholds.get(protocol, DEFAULT_THRESHOLDS[protocol])


class WindowLimits(BaseModel):
    """Requests one API key may make in each window; unset fields take `[rate_limits]`'s."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    per_second: int | None = Field(default=None, ge=1)
    per_minute: int | None = Field(default=None, ge=1)


class RateLimitSettings(BaseModel):
    """Per API key and per scope, enforced by each API process on its own
    (`[rate_limits]` in TOML, `ADDRPOOL_RATE_LIMITS__*`; docs/configuration.md).

    The defaults are backstops above what one process serves (docs/performance.md): a runaway
    client meets them, a checkout never does. `scopes` sets one scope's own limits.
    """

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    enabled: bool = True
    per_second: int = Field(default=2000, ge=1)
    per_minute: int = Field(default=90_000, ge=1)
    scopes: dict[ApiScope, WindowLimits] = Field(default_factory=dict)

    @field_validator("scopes")
    @classmethod
    def _route_scopes_only(
        cls, scopes: dict[ApiScope, WindowLimits]
    ) -> dict[ApiScope, WindowLimits]:
        if "admin" in scopes:
            # No route requires `admin`: an admin key counts against the scope of each route.
            raise ValueError("admin is no route's scope; limit the scopes its routes require")
        return scopes

    def for_scope(self, scope: str) -> tuple[int, int]:
        """(per second, per minute) for a route that requires `scope`."""
        own = next((limits for name, limits in self.scopes.items() if name == scope), None)
        if own is None:
            return self.per_second, self.per_minute
        return own.per_second or self.per_second, own.per_minute or self.per_minute


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
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
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
