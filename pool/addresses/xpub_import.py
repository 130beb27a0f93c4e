"""Import addresses derived from an account's extended public key.

Derivation itself lives in `chains.hd` (pool imports no sibling): callers derive, this turns the
result into the rows of an ordinary import batch, each carrying the key and its index.
"""

from __future__ import annotations

from collections.abc import Sequence

from pool.addresses.importer import Validation, ValidRow
from pool.vocabulary import ParsedAddress


def derived_rows(derived: Sequence[tuple[int, ParsedAddress]], public_key: str) -> Validation:
    """The derived addresses as checked rows (derivation is their validation)."""
    rows = [ValidRow(address.text, address.hex20, index, public_key) for index, address in derived]
    return Validation(rows=rows)
