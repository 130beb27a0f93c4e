"""Event ids: unique and ascending, whatever the clock does (see pool.webhooks.outbox)."""

from __future__ import annotations

import re

import pytest

from pool.webhooks import outbox


def test_ids_keep_the_envelope_format_and_ascend() -> None:
    ids = [outbox.new_event_id() for _ in range(20_000)]  # many share a millisecond
    assert all(re.fullmatch(r"evt_[0-9a-f]{24}", i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_ascend_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([5_000_000_000, 4_000_000_000, 4_000_000_000, 6_000_000_000])
    monkeypatch.setattr(outbox.time, "time_ns", lambda: next(clock))
    ids = outbox._EventIds()
    made = [ids.new() for _ in range(4)]
    assert made == sorted(made)
    assert len(set(made)) == 4
    assert made[1].startswith("evt_" + f"{5_000:012x}")  # held at the latest millisecond seen


def test_different_generators_do_not_collide() -> None:
    """Two processes in the same millisecond start their counters at random points."""
    first, second = outbox._EventIds(), outbox._EventIds()
    assert {first.new() for _ in range(1000)}.isdisjoint({second.new() for _ in range(1000)})
