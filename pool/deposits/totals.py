"""Daily totals of credited deposits per chain and token, for matching against a ledger.

A deposit counts on the UTC day it was credited (confirmed): the moment a merchant's ledger
books it. Amounts are summed as integers of base units and shown in token units. The chain's
own coin has no contract: its `tokenContract` is null (an empty CSV cell), as a native
deposit's `logIndex` is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pool.kit.amounts import format_units
from pool.reconciliation.repository import CreditedDeposit
from pool.vocabulary import NATIVE_CONTRACT

CSV_COLUMNS = (
    "date",
    "chainId",
    "currency",
    "tokenContract",
    "count",
    "amount",
    "firstBlock",
    "lastBlock",
)


@dataclass(slots=True)
class _Total:
    decimals: int
    count: int = 0
    base_units: int = 0
    first_block: int | None = None
    last_block: int | None = None

    def add(self, row: CreditedDeposit) -> None:
        self.count += 1
        self.base_units += row.amount
        self.first_block = min(row.block_number, self.first_block or row.block_number)
        self.last_block = max(row.block_number, self.last_block or row.block_number)


def daily_totals(rows: Iterable[CreditedDeposit]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str, str, str], _Total] = {}
    for row in rows:
        key = (row.confirmed_at.date().isoformat(), row.chain_id, row.currency, row.token_contract)
        totals.setdefault(key, _Total(row.decimals)).add(row)
    return [
        {
            "date": day,
            "chainId": chain_id,
            "currency": currency,
            "tokenContract": None if contract == NATIVE_CONTRACT else contract,
            "count": total.count,
            "amount": format_units(total.base_units, total.decimals),
            "firstBlock": total.first_block,
            "lastBlock": total.last_block,
        }
        for (day, chain_id, currency, contract), total in sorted(totals.items())
    ]


def totals_csv(totals: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(totals)
    return buffer.getvalue()
