"""The recorded figures of docs/performance.md, as `scripts.bench.compare` reads and judges them.

The record is one markdown table in that document, after the line `RECORD_MARK`: a row per
figure — the benchmark, the figure's name, its recorded value as the document gives it
("2,214", "0.59"), whether higher or lower is better, and the section of the document it comes
from (whose text must show that same value: the table cannot drift from the prose). Pure logic,
no I/O: what the command prints and whether it fails is decided here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RECORD_MARK = "<!-- scripts.bench.compare reads the table below -->"
WORSE_THAN = 0.20  # flagged: more than 20% worse than recorded
BETTER = ("higher", "lower")


@dataclass(frozen=True, slots=True)
class Recorded:
    benchmark: str
    figure: str
    text: str  # the value as the document writes it
    better: str  # higher | lower
    section: str

    @property
    def value(self) -> float:
        return parse_number(self.text)


@dataclass(frozen=True, slots=True)
class Verdict:
    recorded: Recorded
    today: float | None  # None: the benchmark failed or did not give the figure
    ratio: float | None  # today / recorded
    worse_by: float | None  # how much worse than recorded (negative: better), as a fraction
    flagged: bool

    @property
    def label(self) -> str:
        if self.today is None:
            return "MISSING"
        return "WORSE" if self.flagged else "ok"


class RecordError(ValueError):
    """The document's table is missing or malformed."""


def parse_number(text: str) -> float:
    """ "2,214" → 2214.0; "0.59" → 0.59; "1.2e3" → 1200.0."""
    cleaned = text.strip().replace(",", "").replace("\u202f", "")
    try:
        return float(cleaned)
    except ValueError:
        raise RecordError(f"not a number: {text!r}") from None


def read_record(document: str) -> list[Recorded]:
    """The rows of the table after `RECORD_MARK`; RecordError when it is absent or broken."""
    lines = document.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == RECORD_MARK)
    except StopIteration:
        raise RecordError(f"no {RECORD_MARK!r} in the document") from None
    table = _table_after(lines, start + 1)
    if len(table) < 3:
        raise RecordError("the record table has no rows")
    header = [cell.lower() for cell in table[0]]
    if header != ["benchmark", "figure", "recorded", "better", "section"]:
        raise RecordError(f"unexpected record columns: {table[0]}")
    rows = [Recorded(*cells) for cells in table[2:]]
    for row in rows:
        if row.better not in BETTER:
            raise RecordError(f"{row.benchmark} / {row.figure}: better is {row.better!r}")
        parse_number(row.text)
    names = [(row.benchmark, row.figure) for row in rows]
    if len(set(names)) != len(names):
        raise RecordError("a figure is recorded twice")
    return rows


def _table_after(lines: list[str], start: int) -> list[list[str]]:
    table: list[list[str]] = []
    for line in lines[start:]:
        if not line.strip() and not table:
            continue
        if not line.lstrip().startswith("|"):
            break
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        table.append(cells)
    return table


def sections(document: str) -> dict[str, str]:
    """Each `## ` section's text by its title (the record's own section excluded by the caller)."""
    found: dict[str, str] = {}
    title = None
    body: list[str] = []
    for line in document.splitlines():
        if line.startswith("## "):
            if title is not None:
                found[title] = "\n".join(body)
            title, body = line[3:].strip(), []
        elif title is not None:
            body.append(line)
    if title is not None:
        found[title] = "\n".join(body)
    return found


def unsupported(rows: Iterable[Recorded], document: str) -> list[str]:
    """Rows whose section does not exist or does not show the recorded value as written."""
    by_title = sections(document)
    problems = []
    for row in rows:
        text = by_title.get(row.section)
        if text is None:
            problems.append(f"{row.benchmark} / {row.figure}: no section {row.section!r}")
        elif not re.search(rf"(?<![\d.,]){re.escape(row.text)}(?![\d,]|\.\d)", text):
            problems.append(
                f"{row.benchmark} / {row.figure}: {row.text} does not appear in {row.section!r}"
            )
    return problems


def judge(row: Recorded, today: float | None, *, worse_than: float = WORSE_THAN) -> Verdict:
    """Direction-aware: a rate 20% lower, or a duration 20% higher, is 20% worse."""
    if today is None:
        return Verdict(row, None, None, None, flagged=True)
    recorded = row.value
    if recorded == 0:
        worse = 0.0 if today == 0 else (float("inf") if row.better == "lower" else -1.0)
        return Verdict(row, today, None, worse, flagged=worse > worse_than)
    ratio = today / recorded
    worse = 1 - ratio if row.better == "higher" else ratio - 1
    return Verdict(row, today, ratio, worse, flagged=worse > worse_than)


def judge_all(
    rows: Iterable[Recorded], today: Mapping[tuple[str, str], float | None]
) -> list[Verdict]:
    return [judge(row, today.get((row.benchmark, row.figure))) for row in rows]


def table(verdicts: Iterable[Verdict]) -> list[list[str]]:
    """Rows for the report: benchmark, figure, recorded, today, today ÷ recorded, verdict."""
    rows = []
    for v in verdicts:
        today = "-" if v.today is None else _format(v.today)
        ratio = "-" if v.ratio is None else f"{v.ratio:.2f}"
        worse = "" if not v.worse_by or v.today is None else f" ({_signed(v.worse_by)})"
        better = "↑" if v.recorded.better == "higher" else "↓"
        name = f"{v.recorded.figure} {better}"
        rows.append([v.recorded.benchmark, name, v.recorded.text, today, ratio, v.label + worse])
    return rows


def _format(value: float) -> str:
    """Three significant digits, as the record writes them (0.100, 4.15, 86.2; 1,158)."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    return f"{value:#.3g}".rstrip(".")


def _signed(worse_by: float) -> str:
    if worse_by == float("inf"):
        return "worse"
    return f"{abs(worse_by) * 100:.0f}% {'worse' if worse_by > 0 else 'better'}"
