"""The one source of time: aware UTC, so both databases and every log agree."""

import re
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


def isoformat_z(moment: datetime) -> str:
    """`2026-11-21T10:30:00.123Z`: the wire format of docs/api.md (UTC, milliseconds, `Z`)."""
    moment = moment.astimezone(UTC)
    # Not strftime: glibc's %Y does not pad years before 1000 to four digits.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}."
        f"{moment.microsecond // 1000:03d}Z"
    )


def isoformat_z_or_none(moment: datetime | None) -> str | None:
    """For optional moments (`unboundAt`, `resolvedAt`): JSON null when absent."""
    return isoformat_z(moment) if moment is not None else None


_AGO = re.compile(r"^(\d+)([mhd])$")
_AGO_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_moment(value: str, *, now: datetime) -> datetime:
    """`30m`, `24h`, `7d` (that long before `now`), a date or an ISO datetime (UTC if naive)."""
    text = value.strip()
    ago = _AGO.match(text)
    try:
        if ago:
            return now - timedelta(**{_AGO_UNITS[ago.group(2)]: int(ago.group(1))})
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # In UTC now, as it is stored: a moment near year 1 or 9999 may not exist there.
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError as exc:
        raise ValueError(f"{value!r} is outside the years 1 to 9999 (UTC)") from exc
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is neither a duration (30m, 24h, 7d) nor an ISO date or time"
        ) from exc
