"""The sections of the settings: chains and their tokens, reconciliation, the console, the
checkout, orders, alerts and their hooks, refill — each refusing unknown keys and bad values
when the configuration loads (rate limits: pool.kit.config_limits)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from pool.vocabulary import Network, Protocol

# How internal transfers of a chain's coin are read (docs/configuration.md, Native coins).
Tracer = Literal["auto", "debug", "trace", "none"]

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
    # The chain's own coin (ETH, BNB, POL): top-level and internal transfers to pool addresses.
    native: bool = False
    native_symbol: str | None = Field(default=None, min_length=1, max_length=16)
    native_decimals: int | None = Field(default=None, ge=0, le=77)
    native_min_amount: str | None = None  # coin units as a decimal string; below it: dust
    # Where internal transfers are read: "debug" (debug_traceBlockByNumber, call tracer),
    # "trace" (trace_block), "none" (top-level only), "auto" (the node is asked at start-up).
    tracer: Tracer = "auto"

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
    # Compare the pool's kept counts with a full count of its addresses on each run (a second
    # or so a million addresses; pool.addresses.counts). Off: `addrpool pool recount` by hand.
    check_counts: bool = True

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


class ConsoleSettings(BaseModel):
    """The operator console (`[console]` in TOML, `ADDRPOOL_CONSOLE__*`; docs/configuration.md)."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    # How long a sign-in lasts: the session cookie's and the session row's expiry.
    session_lifetime: timedelta = timedelta(hours=8)
    # Sign-in attempts one client address may make, per API process (a burst, then a rate).
    sign_ins_per_minute: int = Field(default=10, ge=1, le=10_000)
    sign_in_burst: int = Field(default=5, ge=1, le=10_000)

    @field_validator("session_lifetime", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _seconds_or_iso(value)

    @field_validator("session_lifetime")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=30):
            raise ValueError("must be between 1 minute and 30 days (ISO 8601 such as PT8H)")
        return value


class CheckoutSettings(BaseModel):
    """Payment links' public checkout (`[checkout]` in TOML, `ADDRPOOL_CHECKOUT__*`): every
    order it creates holds a pool address, so strangers' use of it is bounded
    (docs/configuration.md)."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    # Pending orders one link may hold at once: the most of the pool a link can take.
    pending_per_link: int = Field(default=50, ge=1, le=1_000_000)
    # Orders one client address may create, per API process: a sustained rate and a burst.
    orders_per_client_per_minute: int = Field(default=10, ge=1, le=100_000)
    client_burst: int = Field(default=5, ge=1, le=100_000)


class OrderSettings(BaseModel):
    """Orders (`[orders]` in TOML, `ADDRPOOL_ORDERS__*`): their time limits and the address's
    cooldown after one ends (docs/configuration.md)."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    # A request without `paymentWindowMinutes` / `gracePeriodMinutes` gets these (PayIn's).
    default_window_minutes: int = Field(default=10, ge=1)
    default_grace_minutes: int = Field(default=5, ge=0)
    # Window + grace may not exceed this (PayIn: an hour).
    max_total_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    # After an order ends its address cools down, still watched: what arrives is a late payment.
    cooldown: timedelta = timedelta(minutes=30)
    # How often the expiry worker looks for orders whose grace has ended (expiry is at most
    # this late, plus one database round trip).
    expire_every: float = Field(default=1.0, gt=0, le=60)

    @field_validator("cooldown", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _seconds_or_iso(value)

    @field_validator("cooldown")
    @classmethod
    def _no_negative_cooldown(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative (ISO 8601 such as PT30M, or seconds)")
        return value

    @model_validator(mode="after")
    def _defaults_fit_the_maximum(self) -> OrderSettings:
        if self.default_window_minutes + self.default_grace_minutes > self.max_total_minutes:
            raise ValueError(
                "default_window_minutes + default_grace_minutes exceed max_total_minutes"
            )
        return self


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


class RefillSettings(BaseModel):
    """Defaults for the xpubs marked for refill (`[refill]` in TOML, `ADDRPOOL_REFILL__*`);
    which keys refill, and their own values, are switched per key (`addrpool refill`)."""

    model_config = {"extra": "forbid", "hide_input_in_errors": True}

    # How often the worker compares free addresses with each refilling key's low-water mark.
    every: timedelta = timedelta(seconds=10)
    # Free addresses below which a key refills; unset: twice the level `pool_low` fires below.
    low_water: dict[Protocol, PositiveInt] = Field(default_factory=dict)
    # Addresses derived a refill (more, in whole batches, when the pool is further down).
    batch_size: int = Field(default=500, ge=1, le=100_000)
    # The last index a key newly marked for refill may derive, unless `--max-index` says.
    max_index: int = Field(default=999_999, ge=0, le=2**31 - 1)

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _seconds_or_iso(value)

    @field_validator("every")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        return _positive(value)
