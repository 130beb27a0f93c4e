"""What an import says about its input: bounded, and never a secret (invariant 9, docs/design.md).

A report lists at most the first MAX_LISTED problems, each value cut to a short excerpt — or
`[redacted]` when it holds a secret — and counts every problem by kind: a million bad rows make
a small error, not a body of gigabytes.

Secrets are looked for in the whole input before it is parsed, so a key is refused wherever it
is — in any column, any JSON field, a header — and a mnemonic is found even when written one
word per line or as a JSON list of words.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pool.kit.errors import ValidationFailed
from pool.kit.secret_detection import REDACTED, FoundSecret, find_secrets, json_strings, refusal

MAX_LISTED = 100
EXCERPT = 42  # an EVM address, the longest value a good row holds, is shown whole
# What str.splitlines (and so read_rows' line numbers) counts as a line break.
_LINE_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class ImportProblem:
    line: int | None  # the line, or a JSON row's position in its list; None for a request field
    value: str
    message: str
    kind: str
    field: str | None = None

    def as_detail(self) -> dict[str, Any]:
        where: dict[str, Any] = {"line": self.line} if self.field is None else {"field": self.field}
        return {**where, "value": self.value, "message": self.message, "kind": self.kind}


@dataclass(slots=True)
class Problems:
    """The first MAX_LISTED problems (values excerpted) and how many of each kind in all."""

    listed: list[ImportProblem] = field(default_factory=list)
    count: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return len(self.listed) >= MAX_LISTED

    def append(self, problem: ImportProblem) -> None:
        self.count += 1
        self.by_kind[problem.kind] = self.by_kind.get(problem.kind, 0) + 1
        if not self.full:
            self.listed.append(replace(problem, value=excerpt(problem.value)))

    def extend(self, other: Problems) -> None:
        for problem in other.listed:
            if not self.full:
                self.listed.append(problem)
        self.count += other.count
        for kind, count in other.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + count

    def details(self) -> list[dict[str, Any]]:
        return [problem.as_detail() for problem in self.listed]

    def error(self, message: str, *, code: str) -> ValidationFailed:
        return ValidationFailed(
            message,
            code=code,
            details=self.details(),
            details_count=self.count,
            details_by_kind=self.by_kind,
        )


def excerpt(value: str) -> str:
    """What a report may show of an input value: never a secret, never more than EXCERPT."""
    if any(find_secrets(value)):
        return REDACTED
    return value if len(value) <= EXCERPT else value[: EXCERPT - 1] + "…"


def refuse_secrets(problems: Problems) -> None:
    """The whole import is refused, even when invalid rows may be skipped: clean the input."""
    if problems.count:
        raise problems.error(
            f"{problems.count} place(s) in this import hold what looks like a private key; "
            "addrpool never takes private keys: nothing was imported",
            code="PRIVATE_KEY_REFUSED",
        )


def secrets_in_text(text: str) -> Problems:
    """Secrets anywhere in import text, each at the line it starts on (as read_rows counts)."""
    problems = Problems()
    lines = _LineCounter(text)
    for found in find_secrets(text):
        if problems.full:  # from here on only counted: no need to know the lines
            problems.append(_secret_problem(found, 0, 0, "lines"))
            continue
        first, last = lines.line_of(found.start), lines.line_of(found.end - 1)
        problems.append(_secret_problem(found, first, last, "lines"))
    return problems


def secrets_in_items(items: Sequence[Any]) -> Problems:
    """Secrets anywhere in a JSON import's rows (any field, keys too), each at its row's position.

    The rows' strings are read as one text, so a mnemonic spread over rows is found as well.
    """
    pieces = [item if isinstance(item, str) else "\n".join(json_strings(item)) for item in items]
    found = list(find_secrets("\n".join(pieces)))
    problems = Problems()
    if not found:
        return problems
    starts = list(itertools.accumulate((len(piece) + 1 for piece in pieces), initial=0))
    for secret in found:
        first = bisect.bisect_right(starts, secret.start)
        last = bisect.bisect_right(starts, secret.end - 1)
        problems.append(_secret_problem(secret, first, last, "rows"))
    return problems


def secrets_in_fields(fields: Iterable[tuple[str, Any]]) -> Problems:
    """Secrets in the other fields of an import request, named by field (keys checked too)."""
    problems = Problems()
    for name, value in fields:
        for secret in find_secrets("\n".join(json_strings({name: value}))):
            message = refusal(secret.description)
            problems.append(ImportProblem(None, REDACTED, message, secret.kind, excerpt(name)))
    return problems


def _secret_problem(found: FoundSecret, first: int, last: int, unit: str) -> ImportProblem:
    message = refusal(found.description)
    if last != first:
        message += f" ({unit} {first} to {last})"
    return ImportProblem(first, REDACTED, message, found.kind)


class _LineCounter:
    """Line numbers of increasing offsets, counting each stretch of text once."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1

    def line_of(self, offset: int) -> int:
        breaks = _LINE_BREAK.findall(self._text, self._offset, offset)
        self._line += len(breaks)
        self._offset = offset
        return self._line
