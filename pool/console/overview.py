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
from pool.bindings.bind_hours import BindHours
from pool.chain_state.repository import load_cursors
from pool.console.overview_repository import EndpointHealth, endpoint_health
from pool.deposits.payloads import alert_payload, pool_summary_payload
from pool.kit.clock import isoformat_z_or_none
from pool.kit.config import AlertSettings
from pool.reconciliation.repository import load_report
from pool.reconciliation.service import report_view
from pool.vocabulary import Protocol

CHART_DAYS = 30
# An endpoint's recent successes: the last hour's deliveries, an index range that long.
RECENT = timedelta(hours=1)


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
    conn: AsyncConnection, *, now: datetime, alerts: AlertSettings, bind_hours: BindHours
) -> Overview:
    shown = Overview()
    for summary in await summarize(conn, now=now, alerts=alerts, bind_hours=bind_hours):
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
    shown.binds = await bind_hours.per_day(conn, days=CHART_DAYS, now=now)
    return shown
