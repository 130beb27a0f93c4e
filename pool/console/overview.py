"""What the console's overview shows (docs/operations.md, The console): the pool per protocol as
the API's summary counts it, each chain's head, cursor and lag, firing alerts, the last
reconciliation, webhook health per endpoint, and thirty days of binds per protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.stats import summarize
from pool.alerts.repository import list_alerts
from pool.chain_state.repository import load_cursors
from pool.console.overview_repository import EndpointHealth, binds_per_day, endpoint_health
from pool.deposits.payloads import alert_payload, pool_summary_payload
from pool.kit.clock import isoformat_z, isoformat_z_or_none
from pool.kit.config import AlertSettings
from pool.reconciliation.repository import load_report
from pool.reconciliation.service import report_view
from pool.vocabulary import PROTOCOLS, Protocol

CHART_DAYS = 30
RECENT = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ChainRow:
    chain_id: str
    head: int | None
    cursor: int
    lag: int | None
    endpoint: str | None
    updated_at: str | None


@dataclass(slots=True)
class Overview:
    pool: list[dict[str, Any]] = field(default_factory=list)
    chains: list[ChainRow] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] | None = None
    endpoints: list[EndpointHealth] = field(default_factory=list)
    # protocol → (day, binds) for each of the last CHART_DAYS days, oldest first
    binds: dict[Protocol, list[tuple[str, int]]] = field(default_factory=dict)


async def overview(
    conn: AsyncConnection, *, now: datetime, alerts: AlertSettings, bind_days: BindDays
) -> Overview:
    shown = Overview()
    for summary in await summarize(conn, now=now, alerts=alerts):
        shown.pool.append({"protocol": summary.protocol, **pool_summary_payload(summary)})
    shown.chains = [
        ChainRow(
            chain_id=c.chain_id,
            head=c.head,
            cursor=c.block_number,
            lag=None if c.head is None else max(0, c.head - c.block_number),
            endpoint=c.endpoint,
            updated_at=isoformat_z_or_none(c.updated_at),
        )
        for c in await load_cursors(conn)
    ]
    firing, _ = await list_alerts(conn, state="firing", limit=100)
    shown.alerts = [alert_payload(row) for row in firing]
    stored = await load_report(conn)
    shown.report = None if stored is None else report_view(stored)
    shown.endpoints = await endpoint_health(conn, since=now - RECENT)
    for protocol in PROTOCOLS:
        shown.binds[protocol] = await bind_days.chart(conn, protocol=protocol, now=now)
    return shown


class BindDays:
    """Binds per UTC day for the overview's chart, the days that have ended remembered by the
    process: a binding is never deleted nor redated, so a day over (and settled: a transaction
    that began before midnight may commit just after) keeps its count. A view reads the days it
    has not seen and the day under way — the first view of a process reads thirty days of
    bindings, later ones one day's (docs/performance.md, The console's overview)."""

    SETTLED = timedelta(minutes=10)

    def __init__(self) -> None:
        self._ended: dict[tuple[Protocol, datetime], int] = {}

    async def chart(
        self, conn: AsyncConnection, *, protocol: Protocol, now: datetime
    ) -> list[tuple[str, int]]:
        """(day, binds) for each of the last CHART_DAYS days, oldest first."""
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
        ended = [day for day in starts if day + timedelta(days=1) <= now - self.SETTLED]
        unseen = [day for day in ended if (protocol, day) not in self._ended]
        if unseen:
            until = unseen[-1] + timedelta(days=1)
            counted = await binds_per_day(conn, protocol=protocol, since=unseen[0], until=until)
            for day in unseen:
                self._ended[(protocol, day)] = counted.get(_label(day), 0)
        live = [day for day in starts if day not in ended]
        today_on = await binds_per_day(conn, protocol=protocol, since=live[0]) if live else {}
        self._forget_before(starts[0])
        return [
            (
                _label(day),
                self._ended[(protocol, day)] if day in ended else today_on.get(_label(day), 0),
            )
            for day in starts
        ]

    def _forget_before(self, first: datetime) -> None:
        for key in [key for key in self._ended if key[1] < first]:
            del self._ended[key]


def _label(day: datetime) -> str:
    return isoformat_z(day)[:10]
