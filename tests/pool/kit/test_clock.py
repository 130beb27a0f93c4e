from datetime import UTC, datetime, timedelta, timezone

import pytest

from pool.kit.clock import isoformat_z


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),  # glibc's %Y says "1"
        (datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "9999-12-31T23:59:59.999Z"),
        # Another offset is shown in UTC: 10:30 at +02:00 is 08:30Z.
        (
            datetime(2026, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=2))),
            "2026-06-01T08:30:00.000Z",
        ),
    ],
    ids=["ordinary", "year-1", "year-9999", "offset"],
)
def test_isoformat_z_is_the_wire_format_for_every_year(moment: datetime, shown: str) -> None:
    assert isoformat_z(moment) == shown
    to_the_millisecond = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert datetime.fromisoformat(shown) == to_the_millisecond
