"""Every address file PayIn users have, read into uniform rows.

- one address per line, with or without an `address` header;
- CSV with a header naming any of `address, derivation_index, protocol, master_public_key`
  (PayIn's 2- and 4-column files, the self-managed `address,protocol,…` order), or without a
  header, positionally: `address,derivation_index,protocol,master_public_key`, or the
  self-managed order when the second field is a protocol name;
- a JSON list of strings or of `{address, derivationIndex?, masterPublicKey?, protocol?}`.
JSON rows are numbered by their position in the list (1-based), other rows by line.
A secret anywhere in the input refuses it whole before any row is read (addresses.import_problems).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pool.addresses.import_problems import (
    excerpt,
    refuse_secrets,
    secrets_in_items,
    secrets_in_text,
)
from pool.kit.errors import ValidationFailed
from pool.vocabulary import PROTOCOLS

Format = Literal["auto", "lines", "csv", "json"]
FORMATS: tuple[Format, ...] = ("auto", "lines", "csv", "json")
COLUMNS = ("address", "derivation_index", "protocol", "master_public_key")
MAX_NAMES_SHOWN = 5
PAYIN_ORDER = COLUMNS
SELF_MANAGED_ORDER = ("address", "protocol", "derivation_index", "master_public_key")
_JSON_KEYS = {
    "address": "address",
    "derivationIndex": "derivation_index",
    "derivation_index": "derivation_index",
    "masterPublicKey": "master_public_key",
    "master_public_key": "master_public_key",
    "protocol": "protocol",
}

# json.loads turns an escaped lone surrogate into a str that no UTF-8 encoder takes (the
# error that quotes the row, the database driver, a terminal): it must not get that far.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class RawRow:
    line: int
    address: str
    derivation_index: str | None = None
    protocol: str | None = None
    master_public_key: str | None = None
    problem: str | None = None  # a structural fault of the row itself (too many fields)


def decode_import(data: bytes) -> str:
    """An address file's text: UTF-8, with or without a byte-order mark."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"the file is not UTF-8 text (byte {exc.start})") from exc


def read_rows(text: str, *, format: Format = "auto") -> Iterator[RawRow]:
    """The rows of an import; PRIVATE_KEY_REFUSED, at once, if a secret is anywhere in it."""
    text = text.lstrip("\ufeff")
    chosen = detect_format(text) if format == "auto" else format
    if chosen != "json":
        refuse_secrets(secrets_in_text(text))
    return parse_rows(text, format=chosen)


def parse_rows(text: str, *, format: Format = "auto") -> Iterator[RawRow]:
    """read_rows for a text already screened whole (secrets_in_text), as an API request's is.

    A JSON text's strings are still screened once decoded: an escape such as `\\n` glues a
    letter to the next word, which hides a mnemonic from a scan of the raw text.
    """
    text = text.lstrip("\ufeff")
    chosen = detect_format(text) if format == "auto" else format
    if chosen == "json":
        items = _json_items(text)
        refuse_secrets(secrets_in_items(items))
        return iter(item_rows(items))
    return _csv_rows(text) if chosen == "csv" else _line_rows(text)


def detect_format(text: str) -> Format:
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    first = next((line for line in stripped.splitlines() if line.strip()), "")
    return "csv" if "," in first else "lines"


def _line_rows(text: str) -> Iterator[RawRow]:
    for number, raw in enumerate(text.splitlines(), start=1):
        value = raw.strip()
        if not value or (number == 1 and value.lower() == "address"):
            continue
        yield RawRow(number, value)


def _csv_rows(text: str) -> Iterator[RawRow]:
    lines = text.splitlines()
    first_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first_index is None:
        return
    header = [cell.strip().lower() for cell in _header_cells(lines[first_index])]
    columns: tuple[str, ...] | None = None
    if "address" in header:
        columns = _header_columns(header)
        first_index += 1
    for number, cells in _numbered_csv(lines, first_index):
        if isinstance(cells, csv.Error):
            yield RawRow(number, lines[number - 1].strip(), problem=f"not a CSV row: {cells}")
            continue
        order = columns or _positional_order(cells)
        yield _csv_row(number, cells, order)


def _header_cells(line: str) -> list[str]:
    try:
        return next(csv.reader([line]))
    except csv.Error as exc:
        raise ValidationFailed(f"the first line is not a CSV row: {exc}") from exc


def _header_columns(header: list[str]) -> tuple[str, ...]:
    unknown = [name for name in header if name and name not in COLUMNS]
    if unknown:
        shown = [excerpt(name) for name in unknown[:MAX_NAMES_SHOWN]]
        if len(unknown) > MAX_NAMES_SHOWN:
            shown.append(f"{len(unknown) - MAX_NAMES_SHOWN} more")
        raise ValidationFailed(
            f"unknown CSV column(s): {', '.join(shown)} (known: {', '.join(COLUMNS)})"
        )
    return tuple(header)


def _numbered_csv(lines: list[str], start: int) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """Each non-blank line's cells, or why the csv module cannot read it (a field over its
    131,072-character limit): one unreadable row is that row's problem, not a crash."""
    for index in range(start, len(lines)):
        if lines[index].strip():
            try:
                yield index + 1, next(csv.reader([lines[index]]))
            except csv.Error as exc:
                yield index + 1, exc


def _positional_order(cells: list[str]) -> tuple[str, ...]:
    second = cells[1].strip().lower() if len(cells) > 1 else ""
    return SELF_MANAGED_ORDER if second in PROTOCOLS else PAYIN_ORDER


def _csv_row(number: int, cells: list[str], order: tuple[str, ...]) -> RawRow:
    if len(cells) > len(order):
        problem = f"{len(cells)} fields where at most {len(order)} are expected"
        return RawRow(number, cells[0].strip(), problem=problem)
    values = {name: (cell.strip() or None) for name, cell in zip(order, cells, strict=False)}
    return _row(number, values)


def _row(number: int, values: dict[str, str | None]) -> RawRow:
    return RawRow(
        number,
        values.get("address") or "",
        values.get("derivation_index"),
        values.get("protocol"),
        values.get("master_public_key"),
    )


def _json_items(text: str) -> list[Any]:
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        refuse_secrets(secrets_in_text(text))  # a key in a broken file is still a key exposed
        raise ValidationFailed(f"the file is not valid JSON: {exc}", code="INVALID_JSON") from exc
    if "\\" in text and _SURROGATE_ESCAPE.search(text) and not _is_text(items):
        refuse_secrets(secrets_in_text(text))
        raise ValidationFailed(
            "the file is not valid JSON text: it escapes a lone surrogate (\\ud800 to \\udfff)",
            code="INVALID_JSON",
        )
    if not isinstance(items, list):
        refuse_secrets(secrets_in_items([items]))
        raise ValidationFailed("a JSON import must be a list of addresses or of objects")
    return items


def item_rows(items: list[Any]) -> list[RawRow]:
    """The rows of a JSON import's list (screened for secrets by the caller)."""
    return [json_item_row(position, item) for position, item in enumerate(items, start=1)]


def _is_text(document: Any) -> bool:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    return True


def json_item_row(position: int, item: Any) -> RawRow:
    """One element of a JSON import (also what the API's `addresses` list holds)."""
    if isinstance(item, str):
        return RawRow(position, item.strip())
    if not isinstance(item, dict):
        return RawRow(position, json.dumps(item)[:100])  # reported as an invalid address
    values: dict[str, str | None] = {}
    for key, value in item.items():
        name = _JSON_KEYS.get(key)
        if name is not None and value is not None:
            values[name] = str(value).strip()
    return _row(position, values)
