"""The alert rules' decisions: thresholds, hysteresis, projection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from pool.alerts import rules
from pool.kit.config import AlertSettings, Settings

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_defaults_are_payins() -> None:
    settings = AlertSettings()
    assert rules.pool_low_bounds(settings, "evm", 10_000) == rules.PoolLowBounds(200, 220)
    assert rules.pool_low_bounds(settings, "tron", 10_000) == rules.PoolLowBounds(100, 110)


def test_a_percentage_threshold_wins_when_it_asks_for_more() -> None:
    settings = AlertSettings(percent_thresholds={"evm": 5})
    assert rules.pool_low_bounds(settings, "evm", 100_000).fire_below == 5_000
    assert rules.pool_low_bounds(settings, "evm", 1_000).fire_below == 200


def test_hysteresis_fires_once_and_resolves_only_above_the_margin() -> None:
    bounds = rules.PoolLowBounds(200, 220)
    assert rules.pool_low(199, bounds, firing=False) == "fire"
    assert rules.pool_low(150, bounds, firing=True) == "refresh"  # firing: the value follows
    for between in (200, 210, 220):
        assert rules.pool_low(between, bounds, firing=True) == "refresh"  # still firing
        assert rules.pool_low(between, bounds, firing=False) is None
    assert rules.pool_low(221, bounds, firing=True) == "resolve"
    assert rules.pool_low(221, bounds, firing=False) is None
    assert bounds.count_cap == 221


def test_pool_low_is_critical_when_empty_and_refreshed_at_most_once_a_second() -> None:
    assert (rules.pool_low_severity(0), rules.pool_low_severity(1)) == ("critical", "warning")
    last = NOW - timedelta(seconds=0.25)
    wait = rules.refresh_wait(
        severity="warning", firing_severity="warning", last_fired_at=last, now=NOW
    )
    assert wait == 0.75  # a value change waits for the rest of the second
    changed = rules.refresh_wait(
        severity="critical", firing_severity="warning", last_fired_at=last, now=NOW
    )
    assert changed == 0.0  # a severity change is written at once
    stale = NOW - timedelta(seconds=5)
    assert (
        rules.refresh_wait(
            severity="warning", firing_severity="warning", last_fired_at=stale, now=NOW
        )
        == 0.0
    )


@pytest.mark.parametrize(
    ("available", "total", "shown"),
    [(36, 1000, "3.6"), (0, 10, "0"), (1, 3, "33.33"), (5, 5, "100"), (0, 0, "0"), (1, 10**6, "0")],
)
def test_percentage_is_payins_decimal_string(available: int, total: int, shown: str) -> None:
    assert rules.percentage(available, total) == shown


def test_projection_from_the_bind_rate() -> None:
    day = timedelta(hours=24)
    assert rules.projected_exhaustion(100, 0, day, NOW) is None
    assert rules.projected_exhaustion(100, 200, day, NOW) == NOW + timedelta(hours=12)


def test_exhaustion_fires_inside_the_horizon_and_resolves_past_it_plus_margin() -> None:
    settings = AlertSettings()  # 72 h, 10 %
    soon, edge, far = (NOW + timedelta(hours=h) for h in (70, 75, 80))
    assert rules.exhaustion(soon, now=NOW, settings=settings, firing=False) == "fire"
    assert rules.exhaustion(soon, now=NOW, settings=settings, firing=True) == "refresh"
    assert rules.exhaustion(edge, now=NOW, settings=settings, firing=True) == "refresh"
    assert rules.exhaustion(edge, now=NOW, settings=settings, firing=False) is None
    assert rules.exhaustion(far, now=NOW, settings=settings, firing=True) == "resolve"
    assert rules.exhaustion(None, now=NOW, settings=settings, firing=True) == "resolve"


def test_over_limit() -> None:
    assert rules.over_limit(11, 10, firing=False) == "fire"
    assert rules.over_limit(11, 10, firing=True) == "refresh"
    assert rules.over_limit(10, 10, firing=True) == "resolve"
    assert rules.over_limit(3, 10, firing=False) is None


def test_hooks_are_checked_when_settings_are_read() -> None:
    with pytest.raises(ValidationError, match="an http hook needs a url"):
        AlertSettings(hooks=[{"name": "x", "type": "http"}])
    with pytest.raises(ValidationError, match="a command hook needs a command"):
        AlertSettings(hooks=[{"name": "x", "type": "command"}])
    with pytest.raises(ValidationError, match="unique"):
        AlertSettings(hooks=[{"name": "x", "type": "command", "command": ["true"]}] * 2)


def test_alert_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADDRPOOL_ALERTS__THRESHOLDS", '{"evm": 50}')
    monkeypatch.setenv("ADDRPOOL_ALERTS__EXHAUSTION_HORIZON", "3600")
    monkeypatch.setenv(
        "ADDRPOOL_ALERTS__HOOKS", '[{"name": "ops", "type": "http", "url": "https://x/y"}]'
    )
    settings = Settings().alerts
    assert settings.threshold("evm") == 50
    assert settings.threshold("tron") == 100
    assert settings.exhaustion_horizon == timedelta(hours=1)
    assert settings.hooks[0].name == "ops"
