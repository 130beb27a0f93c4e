"""Prove that the pool's addresses derive from our key: anything else is money sent
to someone else's wallet."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from chains.hd import ExtendedPublicKey, address_of, parse_extended_public_key
from pool.addresses.import_problems import ImportProblem
from pool.addresses.importer import Validation, ValidRow
from pool.addresses.repository import KeyedAddress, addresses_with_keys
from pool.kit.errors import ValidationFailed
from pool.vocabulary import Protocol

DEFAULT_SEARCH_BOUND = 10_000


@dataclass(slots=True)
class VerifyReport:
    protocol: Protocol
    verified: int = 0
    mismatched: list[dict[str, object]] = field(default_factory=list)
    not_derivable: list[str] = field(default_factory=list)
    other_key: int = 0
    searched_up_to: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.not_derivable


async def verify_pool(
    conn: AsyncConnection,
    *,
    account: ExtendedPublicKey,
    protocol: Protocol,
    branch: int = 0,
    bound: int = DEFAULT_SEARCH_BOUND,
) -> VerifyReport:
    rows = await addresses_with_keys(conn, protocol=protocol)
    return check_addresses(rows, account=account, protocol=protocol, branch=branch, bound=bound)


def check_addresses(
    rows: list[KeyedAddress],
    *,
    account: ExtendedPublicKey,
    protocol: Protocol,
    branch: int,
    bound: int,
) -> VerifyReport:
    """CPU-bound: callers on an event loop run it in a thread."""
    report = VerifyReport(protocol)
    node = account.child(branch)
    account_text = account.serialize()
    searched: dict[str, int] | None = None
    for row in rows:
        if row.master_public_key is not None and row.master_public_key != account_text:
            report.other_key += 1
            continue
        if row.derivation_index is not None:
            _check_indexed(report, node, row, row.derivation_index, protocol)
            continue
        if searched is None:
            searched = _first_addresses(node, protocol, bound)
            report.searched_up_to = bound
        if row.hex20 in searched:
            report.verified += 1
        else:
            report.not_derivable.append(row.text)
    return report


def _check_indexed(
    report: VerifyReport, node: ExtendedPublicKey, row: KeyedAddress, index: int, protocol: Protocol
) -> None:
    expected = address_of(node.child_public_key(index), protocol)
    if expected.hex20 == row.hex20:
        report.verified += 1
    else:
        report.mismatched.append({"address": row.text, "index": index, "derives": expected.text})


def _first_addresses(node: ExtendedPublicKey, protocol: Protocol, bound: int) -> dict[str, int]:
    return {address_of(node.child_public_key(i), protocol).hex20: i for i in range(bound)}


def verify_import_rows(validation: Validation, *, protocol: Protocol, branch: int) -> None:
    """`import --verify`: a row that names its key and index must derive from them.

    Mismatched rows become problems of the import (refusing it unless `--skip-invalid`).
    """
    keys: dict[str, ExtendedPublicKey] = {}
    kept: list[ValidRow] = []
    for row in validation.rows:
        key, index = row.master_public_key, row.derivation_index
        if key is None or index is None:
            kept.append(row)
            continue
        if key not in keys:
            keys[key] = parse_extended_public_key(key).child(branch)
        expected = address_of(keys[key].child_public_key(index), protocol)
        if expected.hex20 == row.hex20:
            kept.append(row)
            continue
        message = f"index {index} of its master_public_key derives {expected.text}"
        validation.problems.append(
            ImportProblem(row.line, row.text, message, "derivation_mismatch")
        )
    validation.rows = kept


def check_master_keys(validation: Validation) -> dict[str, str]:
    """Parse each distinct master_public_key of an import: key → BIP32 fingerprint.

    Rows whose key is not a valid extended public key become problems of the import.
    """
    fingerprints: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for key in {row.master_public_key for row in validation.rows if row.master_public_key}:
        try:
            fingerprints[key] = parse_extended_public_key(key).fingerprint
        except ValidationFailed as exc:
            unusable[key] = exc.message
    if unusable:
        for row in validation.rows:
            if row.master_public_key in unusable:
                message = f"master_public_key: {unusable[row.master_public_key]}"
                validation.problems.append(
                    ImportProblem(row.line, row.text, message, "invalid_master_public_key")
                )
        validation.rows = [r for r in validation.rows if r.master_public_key not in unusable]
    return fingerprints
