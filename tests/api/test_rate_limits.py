"""Rate limits per API key and scope (docs/api.md, Rate limits): headers on every keyed answer,
429 with `Retry-After` in the error envelope, windows that start afresh, unkeyed routes
untouched. The limiter runs on a clock the tests move: no sleeps."""

import httpx
import pytest

from api.app import create_app
from api.rate_limits import MAX_COUNTERS, RateLimiter
from pool.kit.config import RateLimitSettings, Settings, load_settings
from pool.kit.errors import ConfigurationError
from tests.fixtures.helpers import assert_error_response, auth, load_pool, make_key

BIND = "/api/v1/deposits/bind"
DEPOSITS = "/api/v1/deposits"
SUMMARY = "/api/v1/address-pool/summary"
HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


class Clock:
    def __init__(self, now: float = 999_980.0) -> None:  # 20 s into a minute
        self.now = now

    def __call__(self) -> float:
        return self.now


LIMITS = RateLimitSettings(
    per_second=3,
    per_minute=5,
    scopes={"deposits:write": {"per_second": 2, "per_minute": 100}},
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def limited(settings: Settings, db, clock: Clock):
    """The app with small limits, on the test's clock."""
    app = create_app(settings.model_copy(update={"rate_limits": LIMITS}), db=db)
    app.state.rate_limiter = RateLimiter(LIMITS, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        yield http
    await app.state.ctx.pool_alerts.close()


def _limits(response: httpx.Response) -> tuple[int, int, int]:
    limit, remaining, reset = (int(response.headers[name]) for name in HEADERS)
    return limit, remaining, reset


async def test_headers_count_down_then_429_with_retry_after(limited, db, clock) -> None:
    key = await make_key(db, scopes=["deposits:read"])
    seen = [_limits(await limited.get(DEPOSITS, headers=auth(key))) for _ in range(3)]
    # The burst window (3/s) is the closer to its end: it is the one reported.
    assert seen == [(3, 2, 1), (3, 1, 1), (3, 0, 1)]
    refused = await limited.get(DEPOSITS, headers=auth(key))
    assert_error_response(
        refused,
        429,
        error="TooManyRequests",
        code="RATE_LIMITED",
        message="Rate limit exceeded: 3 deposits:read requests per second for this API key; "
        "retry in 1 s",
    )
    assert refused.headers["retry-after"] == "1"
    assert _limits(refused) == (3, 0, 1)


async def test_the_burst_window_starts_afresh_each_second(limited, db, clock) -> None:
    key = await make_key(db, scopes=["deposits:read"])
    for _ in range(3):
        assert (await limited.get(DEPOSITS, headers=auth(key))).status_code == 200
    assert (await limited.get(DEPOSITS, headers=auth(key))).status_code == 429
    clock.now += 1
    answer = await limited.get(DEPOSITS, headers=auth(key))
    # 4 of the minute's 5 spent (the refused one is not counted): the minute is closer now.
    assert answer.status_code == 200 and _limits(answer) == (5, 1, 39)
    assert "retry-after" not in answer.headers


async def test_the_sustained_window_refuses_until_the_minute_ends(limited, db, clock) -> None:
    key = await make_key(db, scopes=["deposits:read"])
    for _ in range(5):
        clock.now += 1  # under the burst limit, one a second
        assert (await limited.get(DEPOSITS, headers=auth(key))).status_code == 200
    clock.now += 1
    refused = await limited.get(DEPOSITS, headers=auth(key))
    assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
    assert "per minute" in refused.json()["message"]
    assert refused.headers["retry-after"] == "34" and _limits(refused) == (5, 0, 34)
    clock.now += 34
    assert (await limited.get(DEPOSITS, headers=auth(key))).status_code == 200


async def test_each_scope_has_its_own_limits_and_budget(limited, db, clock) -> None:
    await load_pool(db, "evm", 5)
    key = await make_key(db, scopes=["deposits:read", "deposits:write"])
    for n in range(2):
        bound = await limited.post(
            BIND, json={"depositReference": f"r{n}", "protocol": "evm"}, headers=auth(key)
        )
        assert bound.status_code == 201 and _limits(bound) == (2, 1 - n, 1)
    third = await limited.post(
        BIND, json={"depositReference": "r2", "protocol": "evm"}, headers=auth(key)
    )
    assert third.status_code == 429 and "2 deposits:write requests per second" in third.text
    # Reading is another budget, untouched by the binds.
    assert _limits(await limited.get(DEPOSITS, headers=auth(key))) == (3, 2, 1)


async def test_each_key_has_its_own_budget(limited, db, clock) -> None:
    first = await make_key(db, scopes=["deposits:read"])
    second = await make_key(db, scopes=["deposits:read"])
    for _ in range(3):
        await limited.get(DEPOSITS, headers=auth(first))
    assert (await limited.get(DEPOSITS, headers=auth(first))).status_code == 429
    assert (await limited.get(DEPOSITS, headers=auth(second))).status_code == 200


async def test_error_answers_to_a_keyed_request_carry_the_headers(limited, db, clock) -> None:
    key = await make_key(db, scopes=["deposits:write"])
    invalid = await limited.post(BIND, json={"protocol": "evm"}, headers=auth(key))
    assert invalid.status_code == 400 and _limits(invalid) == (2, 1, 1)
    forbidden = await limited.get(SUMMARY, headers=auth(key))
    assert forbidden.status_code == 403 and _limits(forbidden) == (3, 2, 1)


async def test_unkeyed_routes_and_refused_keys_get_no_headers(limited, db, clock) -> None:
    for _ in range(10):
        health = await limited.get("/health")
        assert health.status_code == 200
        assert not any(name in health.headers for name in (*HEADERS, "retry-after"))
    for _ in range(10):
        missing = await limited.get(DEPOSITS)
        assert missing.status_code == 401 and "x-ratelimit-limit" not in missing.headers


async def test_off_means_no_headers_and_no_refusal(settings, db) -> None:
    off = settings.model_copy(update={"rate_limits": RateLimitSettings(enabled=False)})
    app = create_app(off, db=db)
    app.state.rate_limiter = RateLimiter(
        RateLimitSettings(enabled=False, per_second=1, per_minute=1)
    )
    key = await make_key(db, scopes=["deposits:read"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        answers = [await http.get(DEPOSITS, headers=auth(key)) for _ in range(3)]
    await app.state.ctx.pool_alerts.close()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "x-ratelimit-limit" not in answers[0].headers


def test_memory_stays_bounded_by_dropping_expired_counters() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitSettings(), clock=clock)
    for key_id in range(MAX_COUNTERS):
        limiter.spend(key_id, "pool:read")
    clock.now += 60
    limiter.spend(MAX_COUNTERS, "pool:read")  # the older minute's counters are dropped
    assert len(limiter._counters) == 1
    for key_id in range(MAX_COUNTERS + 5):
        limiter.spend(key_id, "pool:read")
    assert len(limiter._counters) <= MAX_COUNTERS


def test_defaults_are_backstops_and_scopes_inherit_what_they_leave_unset() -> None:
    defaults = Settings().rate_limits
    assert defaults.enabled and defaults.for_scope("deposits:write") == (2000, 90_000)
    tuned = RateLimitSettings(scopes={"pool:write": {"per_second": 5}})
    assert tuned.for_scope("pool:write") == (5, 90_000)
    assert tuned.for_scope("pool:read") == (2000, 90_000)


def test_rate_limits_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_RATE_LIMITS__ENABLED", "false")
    monkeypatch.setenv("ADDRPOOL_RATE_LIMITS__SCOPES", '{"pool:write": {"per_minute": 60}}')
    limits = Settings().rate_limits
    assert not limits.enabled and limits.for_scope("pool:write") == (2000, 60)


@pytest.mark.parametrize(
    ("scopes", "fragment"),
    [
        ({"pool:wrte": {"per_second": 5}}, "Input should be 'deposits:read'"),
        ({"admin": {"per_second": 5}}, "admin is no route's scope"),
        ({"pool:write": {"per_second": 0}}, "greater than or equal to 1"),
        ({"pool:write": {"per_hour": 5}}, "per_hour: unknown key"),
    ],
)
def test_bad_scope_limits_are_refused_when_the_configuration_loads(scopes, fragment) -> None:
    with pytest.raises(ConfigurationError, match="rate_limits.scopes") as refused:
        load_settings(rate_limits={"scopes": scopes})
    assert fragment in str(refused.value)


def test_rate_limits_come_from_the_toml_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "addrpool.toml"
    path.write_text(
        "[rate_limits]\nper_second = 200\n\n"
        '[rate_limits.scopes."deposits:write"]\nper_second = 1000\nper_minute = 30000\n'
    )
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(path))
    limits = Settings().rate_limits
    assert limits.for_scope("deposits:write") == (1000, 30_000)
    assert limits.for_scope("deposits:read") == (200, 90_000)
