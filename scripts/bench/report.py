"""What the benchmark reports share: markdown tables, percentiles, and the last step of a run
(print the results, save them for `--json`)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


def save_json(path: Path | None, results: Mapping[str, Any]) -> None:
    """Write the results where `--json` says, if it says anywhere."""
    if path is not None:
        path.write_text(json.dumps(results, indent=2) + "\n")


def finish(
    results: Mapping[str, Any], path: Path | None = None, *, shown: str | None = None
) -> int:
    """A benchmark's last step: print `shown` (by default the results as JSON), save the results
    for `--json`, and give the exit status."""
    print(json.dumps(results, indent=2) if shown is None else shown)
    save_json(path, results)
    return 0
