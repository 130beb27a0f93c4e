"""Binds per protocol and UTC hour, remembered by the process: the pool summary's bind rate
(every /metrics scrape, every summary call) and the console's thirty-day chart.

A binding is never deleted nor redated, so an hour that is over — and settled: a bind whose
transaction began before the hour's end may commit a little after it — keeps its count. A
process counts each settled hour once; afterwards a summary or a chart counts only the
bindings since the last settled hour and the part-hour at the start of its window (index
ranges of about an hour of binds), whatever the bind rate of the last day or month
(docs/performance.md, The console's overview).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.bindings.hours_repository import binds_by_hour, binds_in_ranges
from pool.kit.clock import isoformat_z
from pool.vocabulary import PROTOCOLS, Protocol

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Far longer than any bind transaction; the clocks of the processes that bind are assumed to
# agree within it (they stamp bound_at).
SETTLED = timedelta(minutes=10)
KEPT_FOR = timedelta(days=32)  # the chart's thirty days; longer when a window asks for more


class BindHours:
    def __init__(self) -> None:
        self._binds: dict[tuple[Protocol, datetime], int] = {}  # hours with binds only
        self._counted: set[datetime] = set()  # every hour counted, binds or not
        self._kept_for = KEPT_FOR  # how far back a caller has asked: kept that long

    async def since_each(
        self, conn: AsyncConnection, *, since: datetime, now: datetime
    ) -> dict[Protocol, int]:
        """Binds since `since`, per protocol."""
        settled_until = _floor_hour(now - SETTLED)
        first_whole = _ceil_hour(since)
        if first_whole >= settled_until:  # a window within the last hour or so
            counted = await binds_in_ranges(conn, [(since, None)])
            return {protocol: counted[(protocol, 0)] for protocol in PROTOCOLS}
        await self._remember(conn, first_whole, settled_until, now=now)
        counted = await binds_in_ranges(conn, [(since, first_whole), (settled_until, None)])
        return {
            protocol: counted[(protocol, 0)]
            + self._between(protocol, first_whole, settled_until)
            + counted[(protocol, 1)]
            for protocol in PROTOCOLS
        }

    async def per_day(
        self, conn: AsyncConnection, *, days: int, now: datetime
    ) -> dict[Protocol, list[tuple[str, int]]]:
        """protocol → (`YYYY-MM-DD`, binds) for each of the last `days` UTC days, oldest first."""
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        first = today - (days - 1) * DAY
        settled_until = max(_floor_hour(now - SETTLED), first)
        await self._remember(conn, first, settled_until, now=now)
        live = await binds_by_hour(conn, since=settled_until, until=_ceil_hour(now) + HOUR)
        chart: dict[Protocol, list[tuple[str, int]]] = {}
        for protocol in PROTOCOLS:
            chart[protocol] = []
            for n in range(days):
                day = first + n * DAY
                remembered = self._between(protocol, day, min(day + DAY, settled_until))
                recent = sum(
                    count
                    for (of, hour), count in live.items()
                    if of == protocol and day <= hour < day + DAY
                )
                chart[protocol].append((isoformat_z(day)[:10], remembered + recent))
        return chart

    async def _remember(
        self, conn: AsyncConnection, start: datetime, end: datetime, *, now: datetime
    ) -> None:
        """Count the hours of [start, end) not counted yet, in one statement."""
        missing = [hour for hour in _hours(start, end) if hour not in self._counted]
        if not missing:
            return
        span_end = missing[-1] + HOUR
        counted = await binds_by_hour(conn, since=missing[0], until=span_end)
        for hour in _hours(missing[0], span_end):
            self._counted.add(hour)
            for protocol in PROTOCOLS:
                self._binds.pop((protocol, hour), None)
        self._binds.update(counted)
        self._kept_for = max(self._kept_for, now - start)
        self._forget_before(now - self._kept_for)

    def _between(self, protocol: Protocol, start: datetime, end: datetime) -> int:
        return sum(self._binds.get((protocol, hour), 0) for hour in _hours(start, end))

    def _forget_before(self, first: datetime) -> None:
        self._counted = {hour for hour in self._counted if hour >= first}
        for key in [key for key in self._binds if key[1] < first]:
            del self._binds[key]


def _hours(start: datetime, end: datetime) -> list[datetime]:
    """The hour starts in [start, end); `start` on an hour."""
    count = max(0, int((end - start) / HOUR))
    return [start + n * HOUR for n in range(count)]


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + HOUR
