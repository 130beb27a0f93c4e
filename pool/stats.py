"""The pool at a glance, per protocol: free, bound, cooling down, archived."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.domain import PROTOCOLS, Protocol
from pool.repository.addresses import count_by_state

DEFAULT_THRESHOLDS: dict[Protocol, int] = {"evm": 200, "tron": 100}


@dataclass(frozen=True, slots=True)
class PoolSummary:
    protocol: Protocol
    total: int
    available: int
    bound: int
    cooling_down: int
    archived: int
    threshold: int

    @property
    def below_threshold(self) -> bool:
        return self.available < self.threshold


async def summarize(
    conn: AsyncConnection, *, now: datetime, thresholds: dict[Protocol, int] | None = None
) -> list[PoolSummary]:
    counts = await count_by_state(conn, now=now)
    chosen = thresholds or DEFAULT_THRESHOLDS
    summaries = []
    for protocol in PROTOCOLS:
        of = {
            state: counts.get((protocol, state), 0)
            for state in ("available", "bound", "cooling_down", "archived")
        }
        summaries.append(
            PoolSummary(
                protocol=protocol,
                total=sum(of.values()),
                available=of["available"],
                bound=of["bound"],
                cooling_down=of["cooling_down"],
                archived=of["archived"],
                threshold=chosen[protocol],
            )
        )
    return summaries
