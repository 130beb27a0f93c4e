"""CLI output: readable text by default, JSON with `--json`."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Mapping
from typing import Any, ClassVar

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
    """A one-line progress report on a terminal's stderr; silent anywhere else."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._shown = False

    @classmethod
    def for_terminal(cls, *, enabled: bool) -> ProgressBar:
        return cls(enabled=enabled and sys.stderr.isatty())

    def update(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        share = f" ({done * 100 // total}%)" if total else ""
        print(f"\r{phase} {done:,}{f' of {total:,}' if total else ''} rows{share}   ",
              end="", file=sys.stderr, flush=True)  # fmt: skip
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            print(file=sys.stderr)
