"""Every benchmark again, today's figures beside those recorded in docs/performance.md.

    .venv/bin/python -m scripts.bench.compare [--only bind,watcher] [--full] [--list]

Run it before resolving an issue that touches a hot path. The recorded figures are read from
the record table of docs/performance.md (`scripts.bench.record`), so the document and this
command cannot disagree; what each benchmark runs, and where in its JSON each figure is, is
`scripts.bench.figures`. Each benchmark runs in a quick mode by default (the whole set in
about a quarter of an hour; scale-dependent figures are given per million, or as ratios to a
ceiling measured in the same run), or as the record was taken with `--full` (hours).

Prints one row per figure: recorded, today, today ÷ recorded, and a verdict — WORSE when more
than 20% worse (a rate that fell, a duration that grew), MISSING when the benchmark failed.
Exits 1 if any row is WORSE or MISSING, 2 if the record itself is broken. The machine is shared
and noisy: the load average before and after is printed; re-run what is flagged before
believing it, and compare on a machine as quiet as the one the record names.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.bench.figures import BENCHMARKS, Benchmark, figure_value
from scripts.bench.record import (
    Recorded,
    RecordError,
    Verdict,
    judge_all,
    read_record,
    table,
    unsupported,
)
from scripts.bench.report import markdown

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "performance.md"
TIMEOUT_SECONDS = 3600  # one benchmark, in full mode the longest


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        record = read_record(args.document.read_text())
        problems = unsupported(record, args.document.read_text()) + unknown_figures(record)
    except RecordError as exc:
        print(f"the record in {args.document} is broken: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(f"the record in {args.document} is broken:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    names = _selected(record, args.only)
    if args.list:
        _print_plan(names, args.full)
        return 0
    keep = args.keep or Path(tempfile.mkdtemp(prefix="addrpool-compare-"))
    keep.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    today: dict[tuple[str, str], float | None] = {}
    for name in names:
        today.update(_measure(BENCHMARKS[name], args.full, keep, record))
    verdicts = judge_all([row for row in record if row.benchmark in names], today)
    _print_report(verdicts, args.full, load_before, keep)
    return 1 if any(v.flagged for v in verdicts) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=[],
        help="these benchmarks only, comma-separated (names as in --list)",
    )
    parser.add_argument(
        "--full", action="store_true", help="each benchmark as the record was taken (hours)"
    )
    parser.add_argument(
        "--list", action="store_true", help="print what would run, and the figures, then stop"
    )
    parser.add_argument(
        "--keep", type=Path, help="keep each benchmark's JSON and output in this folder"
    )
    parser.add_argument(
        "--document", type=Path, default=DOCUMENT, help="the record (docs/performance.md)"
    )
    return parser


def unknown_figures(record: list[Recorded]) -> list[str]:
    """Recorded figures no benchmark here knows how to measure."""
    return [
        f"{row.benchmark} / {row.figure}: no such figure in scripts.bench.figures"
        for row in record
        if row.benchmark not in BENCHMARKS or row.figure not in BENCHMARKS[row.benchmark].figures
    ]


def _selected(record: list[Recorded], only: list[str]) -> list[str]:
    recorded = list(dict.fromkeys(row.benchmark for row in record))
    wrong = [name for name in only if name not in recorded]
    if wrong:
        raise SystemExit(f"no recorded benchmark {', '.join(wrong)}: choose from {recorded}")
    return [name for name in recorded if not only or name in only]


def _print_plan(names: list[str], full: bool) -> None:
    for name in names:
        benchmark = BENCHMARKS[name]
        print(f"{name}: {' '.join(benchmark.command(full, Path('RESULT.json')))}")
        for figure in benchmark.figures:
            print(f"    {figure}")


def _measure(
    benchmark: Benchmark, full: bool, keep: Path, record: list[Recorded]
) -> dict[tuple[str, str], float | None]:
    """Today's figures of one benchmark; None for each if it failed."""
    result_path = keep / f"{benchmark.name}.json"
    log_path = keep / f"{benchmark.name}.log"
    argv = benchmark.command(full, result_path)
    print(f"{benchmark.name}: {' '.join(argv[2:])}", flush=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        done = subprocess.run(
            argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT_SECONDS
        )
    print(f"  {time.monotonic() - started:.0f} s, exit {done.returncode}", flush=True)
    figures = [row.figure for row in record if row.benchmark == benchmark.name]
    if done.returncode != 0:
        print(f"  failed: see {log_path}", flush=True)
        return {(benchmark.name, figure): None for figure in figures}
    result = _result(benchmark, result_path, log_path)
    today: dict[tuple[str, str], float | None] = {}
    for figure in figures:
        try:
            today[(benchmark.name, figure)] = figure_value(benchmark, figure, result)
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
            print(f"  {figure}: not in the result ({exc!r})", flush=True)
            today[(benchmark.name, figure)] = None
    return today


def _result(benchmark: Benchmark, result_path: Path, log_path: Path) -> dict[str, Any]:
    if benchmark.json_flag:
        result: dict[str, Any] = json.loads(result_path.read_text())
        return result
    return last_json_document(log_path.read_text())


def last_json_document(output: str) -> dict[str, Any]:
    """The JSON object a benchmark printed last (`json.dumps(…, indent=2)`: it starts with a
    line holding only `{`)."""
    lines = output.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    ends = [i for i, line in enumerate(lines) if line == "}" and i > start]
    document: dict[str, Any] = json.loads("\n".join(lines[start : ends[-1] + 1]))
    return document


def _print_report(
    verdicts: list[Verdict], full: bool, load_before: tuple[float, float, float], keep: Path
) -> None:
    header = ["benchmark", "figure", "recorded", "today", "today ÷ recorded", "verdict"]
    print()
    print(markdown(header, table(verdicts)))
    load_after = os.getloadavg()
    mode = "full" if full else "quick"
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {mode} mode; load average (1/5/15 min) "
        f"before {_load(load_before)}, after {_load(load_after)}; outputs in {keep}"
    )
    flagged = [v for v in verdicts if v.flagged]
    if flagged:
        print(f"{len(flagged)} figure(s) more than 20% worse than recorded, or missing.")
    else:
        print("Nothing more than 20% worse than recorded.")


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


if __name__ == "__main__":
    sys.exit(main())
