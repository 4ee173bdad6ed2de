"""Quota periods start at local midnight in the tenant's zone, also across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from camcount.errors import InvalidInput
from camcount.limits.periods import billing_period, local_midnight, parse_month, period_bounds


def test_daily_period_starts_at_local_midnight_in_a_non_utc_zone() -> None:
    # 23:30 UTC on 3 June is 01:30 on 4 June in Paris (UTC+2): the day is already 4 June there.
    start, end = period_bounds("daily", datetime(2026, 6, 3, 23, 30, tzinfo=UTC), "Europe/Paris")
    assert start == datetime(2026, 6, 3, 22, 0, tzinfo=UTC)
    assert end == datetime(2026, 6, 4, 22, 0, tzinfo=UTC)


def test_day_of_the_spring_change_is_23_hours_long() -> None:
    # Europe/Paris springs forward on 29 March 2026 at 02:00 -> 03:00.
    start, end = period_bounds("daily", datetime(2026, 3, 29, 12, 0, tzinfo=UTC), "Europe/Paris")
    assert start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # midnight at UTC+1
    assert end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # next midnight at UTC+2
    assert end - start == timedelta(hours=23)


def test_day_of_the_autumn_change_is_25_hours_long_and_the_reset_follows_it() -> None:
    # America/New_York falls back on 1 November 2026 at 02:00 -> 01:00.
    start, end = period_bounds("daily", datetime(2026, 11, 1, 12, 0, tzinfo=UTC), "America/New_York")
    assert start == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # midnight EDT (UTC-4)
    assert end == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # midnight EST (UTC-5)
    assert end - start == timedelta(hours=25)
    # One microsecond before the end still belongs to 1 November; the end itself starts 2 November.
    before, _ = period_bounds("daily", end - timedelta(microseconds=1), "America/New_York")
    after, _ = period_bounds("daily", end, "America/New_York")
    assert before == start
    assert after == end


def test_missing_midnight_starts_the_day_at_the_jump() -> None:
    # America/Santiago springs forward at 00:00 -> 01:00 (6 September 2026).
    start = local_midnight(date(2026, 9, 6), "America/Santiago")
    assert start == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert start.astimezone(__import__("zoneinfo").ZoneInfo("America/Santiago")).hour == 1


@pytest.mark.parametrize(
    ("period", "expected_start", "expected_end"),
    [
        ("weekly", datetime(2026, 10, 26, 4, 0, tzinfo=UTC), datetime(2026, 11, 2, 5, 0, tzinfo=UTC)),
        ("monthly", datetime(2026, 11, 1, 4, 0, tzinfo=UTC), datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
        ("yearly", datetime(2026, 1, 1, 5, 0, tzinfo=UTC), datetime(2027, 1, 1, 5, 0, tzinfo=UTC)),
    ],
)
def test_weekly_monthly_and_yearly_periods_use_local_boundaries(
    period: str, expected_start: datetime, expected_end: datetime
) -> None:
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # a Sunday, the day of the autumn change
    assert period_bounds(period, now, "America/New_York") == (expected_start, expected_end)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        period_bounds("daily", datetime(2026, 1, 1), "UTC")  # noqa: DTZ001


def test_billing_periods_close_with_their_last_month() -> None:
    assert billing_period("monthly", 2026, 11) == (date(2026, 11, 1), date(2026, 12, 1))
    assert billing_period("quarterly", 2026, 11) is None
    assert billing_period("quarterly", 2026, 12) == (date(2026, 10, 1), date(2027, 1, 1))
    assert billing_period("yearly", 2026, 12) == (date(2026, 1, 1), date(2027, 1, 1))
    assert billing_period("yearly", 2026, 6) is None


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-11-01", "x' OR 1=1"])
def test_malformed_billing_months_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_month(bad)
