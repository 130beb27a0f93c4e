"""Pacing background work: the rests keep it busy at most its duty cycle of the time."""

from __future__ import annotations

import time

import pytest

from pool.kit.pacing import MAX_REST, UNPACED, Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rest_is_in_proportion_to_the_work_since_the_last_one() -> None:
    clock = FakeClock()
    pacer = Pacer(0.2, max_rest=10.0, clock=clock)
    clock.now += 0.5  # half a second of work at a fifth of the time: two seconds of rest
    assert pacer.rest_for() == pytest.approx(2.0)
    pacer = Pacer(0.5, clock=clock)
    clock.now += 0.3
    assert pacer.rest_for() == pytest.approx(0.3)


def test_a_single_rest_is_capped() -> None:
    """A step that waited two seconds on a remote node did not load this box for two."""
    clock = FakeClock()
    pacer = Pacer(0.1, clock=clock)
    clock.now += 2.0
    assert pacer.rest_for() == MAX_REST
    assert Pacer(0.1, max_rest=30.0, clock=clock).rest_for() == 0  # measured from its start
    long = Pacer(0.1, max_rest=30.0, clock=clock)
    clock.now += 2.0
    assert long.rest_for() == pytest.approx(18.0)


def test_unpaced_never_rests() -> None:
    clock = FakeClock()
    pacer = Pacer(UNPACED, clock=clock)
    clock.now += 10
    assert pacer.rest_for() == 0


@pytest.mark.parametrize("duty_cycle", [0, -0.1, 1.5])
def test_a_duty_cycle_outside_zero_to_one_is_refused(duty_cycle: float) -> None:
    with pytest.raises(ValueError, match="duty_cycle"):
        Pacer(duty_cycle)


async def test_resting_keeps_the_share_of_busy_time_near_the_duty_cycle() -> None:
    pacer = Pacer(0.25)
    started = time.monotonic()
    busy = 0.0
    for _ in range(5):
        step = time.monotonic()
        while time.monotonic() - step < 0.01:  # 10 ms of work
            pass
        busy += time.monotonic() - step
        await pacer.rest()
    elapsed = time.monotonic() - started
    # At most its share (a late wake-up only lowers it), and the rests are what it slept.
    assert busy / elapsed <= 0.27
    assert pacer.rested >= 3 * busy * 0.95
    assert pacer.rested <= elapsed - busy
