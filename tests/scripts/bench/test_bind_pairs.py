"""The bind benchmark's pairing of runs (pure logic)."""

from __future__ import annotations

import pytest

from scripts.bench.bind import median_run, pair_ratios


def run(rps: float) -> dict[str, float]:
    return {"rps": rps, "p50_ms": 10.0, "p99_ms": 50.0, "non_2xx": 0.0}


def test_each_repetition_is_divided_by_its_own_ceiling() -> None:
    # The 2026-11-22 record's runs: a ratio of medians of 0.72 from pairs of 0.51-0.93.
    binds = [run(1579), run(2222), run(2214)]
    ceilings = [run(3076), run(2386), run(3623)]
    assert pair_ratios(binds, ceilings) == [0.51, 0.93, 0.61]
    ratio_of_medians = median_run(binds)["rps"] / median_run(ceilings)["rps"]
    assert round(ratio_of_medians, 2) == 0.72


def test_runs_missing_from_one_side_are_an_error() -> None:
    with pytest.raises(ValueError):
        pair_ratios([run(1), run(2)], [run(1)])
