"""The compare command's reading of docs/performance.md and its verdicts (pure logic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.bench.compare import last_json_document, unknown_figures
from scripts.bench.record import (
    RECORD_MARK,
    Recorded,
    RecordError,
    judge,
    judge_all,
    parse_number,
    read_record,
    table,
    unsupported,
)

DOCUMENT = f"""# Performance

## Bind

| target | binds/s | p99 ms |
|---|---|---|
| addrpool | 2,214 | 66 |

## Watcher

ratio 0.59 at the default range, 0.590 elsewhere.

## Today against the record

{RECORD_MARK}

| benchmark | figure | recorded | better | section |
|---|---|---|---|---|
| bind | binds/s | 2,214 | higher | Bind |
| bind | p99 ms | 66 | lower | Bind |
| watcher | ratio | 0.59 | higher | Watcher |

Text after the table.
"""


def _row(text: str, better: str) -> Recorded:
    return Recorded("b", "f", text, better, "S")


def test_the_table_after_the_mark_is_the_record() -> None:
    rows = read_record(DOCUMENT)
    assert [(r.benchmark, r.figure, r.value, r.better) for r in rows] == [
        ("bind", "binds/s", 2214.0, "higher"),
        ("bind", "p99 ms", 66.0, "lower"),
        ("watcher", "ratio", 0.59, "higher"),
    ]
    assert unsupported(rows, DOCUMENT) == []


@pytest.mark.parametrize(
    ("text", "value"), [("2,214", 2214.0), ("0.59", 0.59), (" 1,125 ", 1125.0), ("3", 3.0)]
)
def test_numbers_as_the_document_writes_them(text: str, value: float) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        (DOCUMENT.replace(RECORD_MARK, ""), "no "),
        (DOCUMENT.replace("| higher | Bind |", "| faster | Bind |"), "better is"),
        (DOCUMENT.replace("| 66 |", "| sixty |"), "not a number"),
        (DOCUMENT.replace("| watcher | ratio |", "| bind | binds/s |"), "twice"),
        (DOCUMENT.replace("| recorded |", "| value |"), "columns"),
    ],
    ids=["no-mark", "bad-direction", "bad-number", "duplicate", "bad-header"],
)
def test_a_broken_record_is_an_error(broken: str, why: str) -> None:
    with pytest.raises(RecordError, match=why):
        read_record(broken)


def test_a_recorded_value_must_appear_in_its_section() -> None:
    drifted = DOCUMENT.replace("| addrpool | 2,214 | 66 |", "| addrpool | 2,400 | 66 |")
    moved = DOCUMENT.replace("| Watcher |\n", "| Bind |\n")
    assert unsupported(read_record(drifted), drifted) == [
        "bind / binds/s: 2,214 does not appear in 'Bind'"
    ]
    assert unsupported(read_record(moved), moved) == [
        "watcher / ratio: 0.59 does not appear in 'Bind'"
    ]
    # Part of a longer number does not count: 0.59 is not found in 0.590 alone, nor 66 in 166.
    only_longer = DOCUMENT.replace("ratio 0.59 at", "ratio 0.590 at").replace(
        ", 0.590 elsewhere", ""
    )
    assert unsupported(read_record(only_longer), only_longer) == [
        "watcher / ratio: 0.59 does not appear in 'Watcher'"
    ]


@pytest.mark.parametrize(
    ("recorded", "better", "today", "flagged", "worse_by"),
    [
        ("1,000", "higher", 800.0, False, 0.20),  # exactly 20% worse: not more than 20%
        ("1,000", "higher", 799.0, True, 0.201),
        ("1,000", "higher", 1500.0, False, -0.5),
        ("100", "lower", 120.0, False, 0.20),
        ("100", "lower", 121.0, True, 0.21),
        ("100", "lower", 50.0, False, -0.5),
        ("0", "lower", 0.0, False, 0.0),  # a count that must stay zero
        ("0", "lower", 1.0, True, float("inf")),
    ],
    ids=[
        "rate-20pc-lower",
        "rate-over-20pc-lower",
        "rate-higher",
        "latency-20pc-higher",
        "latency-over-20pc-higher",
        "latency-lower",
        "zero-stays-zero",
        "zero-becomes-one",
    ],
)
def test_verdicts_know_which_way_is_better(
    recorded: str, better: str, today: float, flagged: bool, worse_by: float
) -> None:
    verdict = judge(_row(recorded, better), today)
    assert verdict.flagged is flagged
    assert verdict.worse_by == pytest.approx(worse_by)


def test_a_figure_the_run_did_not_give_is_flagged() -> None:
    [verdict] = judge_all([_row("5", "higher")], {})
    assert verdict.flagged and verdict.label == "MISSING"
    assert table([verdict]) == [["b", "f ↑", "5", "-", "-", "MISSING"]]


def test_figures_keep_three_significant_digits() -> None:
    today = {("b", "f"): 0.1}
    [row] = table(judge_all([_row("0.10", "lower")], today))
    assert row[3:] == ["0.100", "1.00", "ok"]


def test_the_report_rows() -> None:
    rows = read_record(DOCUMENT)
    today = {("bind", "binds/s"): 1500.0, ("bind", "p99 ms"): 60.0, ("watcher", "ratio"): 0.61}
    assert table(judge_all(rows, today)) == [
        ["bind", "binds/s ↑", "2,214", "1,500", "0.68", "WORSE (32% worse)"],
        ["bind", "p99 ms ↓", "66", "60.0", "0.91", "ok (9% better)"],
        ["watcher", "ratio ↑", "0.59", "0.610", "1.03", "ok (3% better)"],
    ]


def test_the_performance_document_holds_a_sound_record() -> None:
    """Every recorded figure shows in its section, and the compare command can measure it."""
    document = (Path(__file__).resolve().parents[3] / "docs" / "performance.md").read_text()
    rows = read_record(document)
    assert rows
    assert unsupported(rows, document) == []
    assert unknown_figures(rows) == []


def test_a_result_printed_last_is_found_in_the_output() -> None:
    output = 'progress: {"partial": 1}\n{\n  "a": {\n    "b": 2\n  }\n}\n'
    assert last_json_document('noise\n{\n  "x": 0\n}\n' + output) == {"a": {"b": 2}}
