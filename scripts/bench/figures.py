"""What `scripts.bench.compare` runs for each benchmark, and where in its result each figure is.

A benchmark's quick mode keeps the shape of the recorded run at a smaller scale; a figure that
grows with the scale is given per million rows, or as a ratio to a ceiling measured in the same
run, so that the quick run and the record compare. The figure names are those of the record
table in docs/performance.md (`scripts.bench.record`); a test checks that every recorded figure
is known here.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Result = dict[str, Any]
Figure = Callable[[Result], float]
MILLION = 1_000_000
DEFAULT_RANGE = 500  # chains.presets.DEFAULT_MAX_BLOCK_RANGE, the watcher's headline


@dataclass(frozen=True)
class Benchmark:
    name: str  # scripts.bench.<name>
    quick: tuple[str, ...]
    full: tuple[str, ...]
    figures: Mapping[str, Figure] = field(default_factory=dict)
    # True: it writes its result to `--json PATH`; False: it prints it last, as JSON.
    json_flag: bool = True

    def command(self, full: bool, result_path: Path) -> list[str]:
        argv = [sys.executable, "-m", f"scripts.bench.{self.name}"]
        argv += self.full if full else self.quick
        return argv + (["--json", str(result_path)] if self.json_flag else [])


def figure_value(benchmark: Benchmark, figure: str, result: Result) -> float:
    return float(benchmark.figures[figure](result))


def _per_million(seconds: float, count: float) -> float:
    return seconds * MILLION / count


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _import_figures(backend: str) -> dict[str, Figure]:
    key = f"{backend}/evm"
    return {
        f"{backend} EVM, first million, s": lambda r: _per_million(
            r[key]["first"]["seconds"], r["rows"]
        ),
        f"{backend} EVM, second ÷ first": lambda r: r[key]["second_vs_first"],
    }


def _deliveries_per_second(backend: str, scenario: str) -> Figure:
    """As scripts/bench/webhooks_report.py gives it: events × healthy endpoints ÷ seconds."""

    def figure(r: Result) -> float:
        run = r["throughput"][backend][scenario]
        return float(run["events"] * len(run["healthy"]) / run["seconds"])

    return figure


def _pending_latency(backend: str) -> Figure:
    """Block mined → `deposit.pending` webhook received, the median."""
    return lambda r: _median(
        [s["pending_at"] - s["mined_at"] for s in r["latency"][backend]["samples"]]
    )


def _catch_up_ratio(backend: str) -> Figure:
    """Watcher ÷ bare scan at the default range, as scripts/bench/watcher_report.py gives it."""
    from scripts.bench.watcher_report import catchup_figures

    return lambda r: catchup_figures(r, backend, DEFAULT_RANGE)["ratio"]


def _alert_latency(backend: str) -> Figure:
    return lambda r: _median([s["fired_seconds"] for s in r["latency"][backend]["samples"]])


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "bind",
            # Three pairs, not one: a single pair's ratio spans about ±0.2 on this shared machine.
            quick=("--pool", "200000", "--bound", "100000", "--duration", "4", "--repeat", "3"),
            full=("--duration", "8", "--repeat", "3"),
            figures={
                "PostgreSQL binds/s": lambda r: r["fresh"]["bind"]["rps"],
                "PostgreSQL p99 ms": lambda r: r["fresh"]["bind"]["p99_ms"],
                "PostgreSQL ÷ lone-statement ceiling": lambda r: r["fresh"]["ratio"],
                "PostgreSQL after bulk bind, binds/s": lambda r: r["after_bound"]["bind"]["rps"],
                "SQLite binds/s": lambda r: r["sqlite"]["bind"]["rps"],
                "SQLite p99 ms": lambda r: r["sqlite"]["bind"]["p99_ms"],
                "SQLite ÷ bare-claim ceiling": lambda r: r["sqlite"]["ratio"],
            },
        ),
        Benchmark(
            "orders",
            quick=("--pool", "200000", "--duration", "5", "--repeat", "1"),
            full=("--duration", "10", "--repeat", "3"),
            figures={
                "PostgreSQL orders/s": lambda r: r["postgresql"]["orders"]["rps"],
                "PostgreSQL orders p99 ms": lambda r: r["postgresql"]["orders"]["p99_ms"],
                "PostgreSQL orders ÷ lone-statement ceiling": lambda r: r["postgresql"][
                    "orders_vs_ceiling"
                ],
                "SQLite orders/s": lambda r: r["sqlite"]["orders"]["rps"],
            },
        ),
        Benchmark(
            "imports",
            quick=("--rows", "250000", "--skip-tron"),
            full=(),
            figures={**_import_figures("postgresql"), **_import_figures("sqlite")},
            json_flag=False,
        ),
        Benchmark(
            "import_binds",
            # The binds' wait does not grow with the import's size: chunks of ~100 ms each.
            quick=("--rows", "200000"),
            full=("--repeat", "3"),
            figures={
                "bind p99 during the import, ms": lambda r: _median(
                    [run["during"]["p99_ms"] for run in r["runs"]]
                ),
                "503 answers during the import": lambda r: sum(
                    run["during"]["status_503"] for run in r["runs"]
                ),
            },
            json_flag=False,
        ),
        Benchmark(
            "import_screen",
            quick=("--rows", "200000", "--repeat", "1"),
            full=(),
            figures={
                "screen, a million address lines, s": lambda r: _per_million(
                    r["address lines"]["screen_s"], r["rows"]
                ),
            },
        ),
        Benchmark(
            "xpub",
            quick=("--rate-count", "10000", "--count", "100000"),
            full=(),
            figures={
                "EVM addresses/s": lambda r: r["rate/evm"]["addrpool_per_s"],
                "Tron addresses/s": lambda r: r["rate/tron"]["addrpool_per_s"],
                "import --xpub, a million, s": lambda r: _per_million(
                    r["import_xpub"]["seconds"], r["import_xpub"]["imported"]
                ),
                "pool verify, a million, s": lambda r: _per_million(
                    r["verify"]["seconds"], r["verify"]["verified"]
                ),
            },
            json_flag=False,
        ),
        Benchmark(
            "watcher",
            quick=(
                "--addresses",
                "100000",
                "--transfers",
                "20000",
                "--blocks",
                "800",
                "--ranges",
                str(DEFAULT_RANGE),
                "--repeat",
                "1",
                "--samples",
                "4",
                "--watched",
                "1000",
                "--skip-web3",
            ),  # fmt: skip
            full=("--repeat", "5"),
            figures={
                "SQLite watcher ÷ bare scan": _catch_up_ratio("sqlite"),
                "PostgreSQL watcher ÷ bare scan": _catch_up_ratio("postgresql"),
                "SQLite head latency, median s": lambda r: _median(
                    r["backends"]["sqlite"]["latency"]
                ),
                "PostgreSQL head latency, median s": lambda r: _median(
                    r["backends"]["postgresql"]["latency"]
                ),
            },
        ),
        Benchmark(
            "reconcile",
            quick=(
                "--deposits",
                "20000",
                "--pool",
                "100000",
                "--runs",
                "3",
                "--cycles",
                "0",
                "--backends",
                "postgresql,sqlite",
            ),  # fmt: skip
            full=("--cycles", "4", "--backends", "postgresql,sqlite"),
            figures={
                "PostgreSQL reconcile, flat out, median s": lambda r: r["backends"]["postgresql"][
                    "reconcile"
                ]["wall_s_median"],
                "SQLite reconcile, flat out, median s": lambda r: r["backends"]["sqlite"][
                    "reconcile"
                ]["wall_s_median"],
            },
        ),
        Benchmark(
            "webhooks",
            quick=("--events", "1000", "--samples", "4", "--scenarios", "one,four"),
            full=("--events", "4000", "--samples", "12"),
            figures={
                "SQLite, 1 endpoint, deliveries/s": _deliveries_per_second("sqlite", "one"),
                "SQLite, 4 endpoints, deliveries/s": _deliveries_per_second("sqlite", "four"),
                "PostgreSQL, 1 endpoint, deliveries/s": _deliveries_per_second("postgresql", "one"),
                "PostgreSQL, 4 endpoints, deliveries/s": _deliveries_per_second(
                    "postgresql", "four"
                ),
                "SQLite, mined → deposit.pending, median s": _pending_latency("sqlite"),
                "PostgreSQL, mined → deposit.pending, median s": _pending_latency("postgresql"),
            },
        ),
        Benchmark(
            "alerts",
            quick=("--parts", "latency", "--samples", "6"),
            full=("--samples", "12", "--duration", "8", "--repeat", "5"),
            figures={
                "SQLite bind → fired POST, median s": _alert_latency("sqlite"),
                "PostgreSQL bind → fired POST, median s": _alert_latency("postgresql"),
            },
        ),
        Benchmark(
            "rate_limits",
            quick=("--seconds", "1", "--rounds", "5"),
            full=("--seconds", "2", "--rounds", "15"),
            figures={"limiter µs per request": lambda r: r["spend_us"] + r["headers_us"]},
            json_flag=False,
        ),
        Benchmark(
            "upstream",
            quick=("--binds", "150", "--addresses", "500"),
            full=("--binds", "300", "--addresses", "1000"),
            figures={"front's overhead, median ms": lambda r: r["overhead"]["median_ms"]},
        ),
        Benchmark(
            "fuzz_api",
            quick=("--cases", "1000", "--backend", "sqlite"),
            full=("--cases", "20000", "--backend", "sqlite"),
            figures={"SQLite 5xx answers": lambda r: r["serverErrors"]},
            json_flag=False,
        ),
        Benchmark(
            "cli_startup",
            quick=("--runs", "5"),
            full=("--runs", "7"),
            figures={
                "addrpool --help, s": lambda r: r["addrpool --help"]["median_s"],
                "addrpool keys list, s": lambda r: r["addrpool keys list"]["median_s"],
            },
        ),
    )
}
