"""CLI output: readable text by default, JSON with `--json`."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TextIO

from pool.kit.errors import AddrpoolError


class Output:
    # `--debug`: an error's traceback goes to stderr before its line.
    show_tracebacks: ClassVar[bool] = False

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json

    def result(self, data: Any, text: str) -> None:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if self.as_json else text)

    def error(self, exc: AddrpoolError) -> None:
        if self.show_tracebacks:
            traceback.print_exception(exc, file=sys.stderr)
        if self.as_json:
            print(json.dumps(exc.envelope(), indent=2, ensure_ascii=False))
            return
        print(f"error: {exc.message}", file=sys.stderr)
        for detail in exc.details or []:
            where = f"line {detail['line']}" if "line" in detail else detail.get("field", "")
            value = f" {detail['value']!r}" if "value" in detail else ""
            print(f"  {where}:{value} {detail['message']}", file=sys.stderr)
        if exc.details_count is not None:
            more = more_problems(
                exc.details_count, exc.details_by_kind or {}, len(exc.details or [])
            )
            if more is not None:
                print(f"  {more}", file=sys.stderr)


def more_problems(count: int, by_kind: Mapping[str, int], listed: int) -> str | None:
    """The line under a bounded list of problems: how many were left out, and of which kinds."""
    if count <= listed:
        return None
    kinds = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(by_kind.items(), key=lambda i: -i[1]))
    return f"... and {count - listed:,} more not listed ({count:,} in all; {kinds})"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


class ProgressBar:
    """Rows done, a bar, the rate and the time left, on one line of a terminal's stderr;
    silent anywhere else (a pipe, a log file, `--json`).

    Each phase (validated, written, derived, …) keeps its last line when the next begins, so a
    finished import leaves one line a phase. A phase whose total is not known yet (0) shows the
    rows and the rate only, unless an estimate was given for it (`expect`). Redrawn at most
    every REDRAW seconds: a caller may report as often as it likes.
    """

    REDRAW = 0.1
    WIDTH = 24

    def __init__(
        self,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self._stream = stream
        self._clock = clock
        self._phase: str | None = None
        self._phase_started = clock()  # then: when the phase before last reported
        self._reported_at = self._phase_started
        self._drawn_at: float | None = None
        self._width = 0
        self._estimates: dict[str, int] = {}

    @classmethod
    def for_terminal(cls, *, enabled: bool) -> ProgressBar:
        return cls(enabled=enabled and sys.stderr.isatty())

    def expect(self, phase: str, rows: int) -> None:
        """About how many rows `phase` will report, for a bar before its total is known."""
        self._estimates[phase] = rows

    def update(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if phase != self._phase:
            if self._phase is not None:
                self._end_line()
            # The phase began when the one before ended: its first report comes a chunk late.
            self._phase, self._phase_started, self._drawn_at = phase, self._reported_at, None
        self._reported_at = now
        finished = total > 0 and done >= total
        if self._drawn_at is not None and now - self._drawn_at < self.REDRAW and not finished:
            return
        self._drawn_at = now
        known = total or self._estimates.get(phase, 0)
        line = progress_line(
            phase, done, max(known, done) if known else 0, now - self._phase_started
        )
        print(f"\r{line.ljust(self._width)}", end="", file=self._out(), flush=True)
        self._width = len(line)

    def note(self, text: str) -> None:
        """A line of its own on stderr (shown even when the bar is not): the bar's line, if
        one is drawn, is ended first and the next report starts a new one."""
        if self._phase is not None and self.enabled:
            self._end_line()
            self._drawn_at = None
        print(text, file=self._out(), flush=True)

    def finish(self) -> None:
        if self._phase is not None and self.enabled:
            self._end_line()
        self._phase = None

    def _end_line(self) -> None:
        print(file=self._out(), flush=True)
        self._width = 0

    def _out(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr


def progress_line(phase: str, done: int, total: int, elapsed: float) -> str:
    """`written 120,000 of 200,000 rows [##############----------]  60%  41,200 rows/s  ETA 0:02`"""
    rate = done / elapsed if elapsed > 0 else 0.0
    speed = f"{rate:,.0f} rows/s" if rate else "- rows/s"
    if not total:
        return f"{phase} {done:,} rows  {speed}"
    share = min(done / total, 1.0)
    filled = round(share * ProgressBar.WIDTH)
    bar = "#" * filled + "-" * (ProgressBar.WIDTH - filled)
    left = "-:--" if not rate else _clock_time((total - done) / rate)
    return f"{phase} {done:,} of {total:,} rows [{bar}] {share:4.0%}  {speed}  ETA {left}"


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
