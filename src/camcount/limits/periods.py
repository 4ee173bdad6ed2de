"""Periods in a tenant's time zone: quota resets and billing cycles.

A period starts at the first instant of a local day (local midnight; where midnight does not exist
because of a daylight-saving jump, the first instant after it) and ends where the next one starts,
half-open ``[start, end)``. Days are therefore 23, 24 or 25 hours long across DST changes; that
is intended: "per day" means the tenant's calendar day. All instants returned are aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from camcount.errors import InvalidInput


class ResetPeriod(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"  # ISO weeks: Monday to Sunday
    MONTHLY = "monthly"
    YEARLY = "yearly"


class BillingCycle(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one (UTC)")


def local_date(now: datetime, tz: str) -> date:
    """The tenant's calendar date at ``now``."""
    _require_aware(now)
    return now.astimezone(zone(tz)).date()


def local_midnight(day: date, tz: str) -> datetime:
    """The first instant of ``day`` in ``tz``, in UTC.

    fold=0 resolves an ambiguous midnight to its first occurrence and a missing one (a gap) to the
    instant of the jump, which is the first instant whose local date is ``day``.
    """
    local = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    return local.astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after ``day``'s month (``day`` is a first of month)."""
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def period_start_date(period: ResetPeriod | str, today: date) -> date:
    kind = ResetPeriod(period)
    if kind is ResetPeriod.DAILY:
        return today
    if kind is ResetPeriod.WEEKLY:
        return today - timedelta(days=today.weekday())
    if kind is ResetPeriod.MONTHLY:
        return today.replace(day=1)
    return date(today.year, 1, 1)


def next_start_date(period: ResetPeriod | str, start: date) -> date:
    kind = ResetPeriod(period)
    if kind is ResetPeriod.DAILY:
        return start + timedelta(days=1)
    if kind is ResetPeriod.WEEKLY:
        return start + timedelta(days=7)
    if kind is ResetPeriod.MONTHLY:
        return add_months(start, 1)
    return date(start.year + 1, 1, 1)


def period_bounds(period: ResetPeriod | str, now: datetime, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of the quota period containing ``now`` in the tenant's zone, in UTC."""
    start = period_start_date(period, local_date(now, tz))
    return local_midnight(start, tz), local_midnight(next_start_date(period, start), tz)


def parse_month(value: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (year, month)."""
    try:
        year_text, month_text = value.split("-")
        year, month = int(year_text), int(month_text)
    except ValueError:
        raise InvalidInput("period", f"{value[:20]!r} is not a month like 2026-11") from None
    if not (len(year_text) == 4 and len(month_text) == 2 and 2000 <= year <= 2200 and 1 <= month <= 12):
        raise InvalidInput("period", f"{value[:20]!r} is not a month like 2026-11")
    return year, month


def billing_period(cycle: BillingCycle | str, year: int, month: int) -> tuple[date, date] | None:
    """The cycle's period that ends with month ``year-month``, as local dates ``[start, end)``.

    Monthly: that month. Quarterly: the calendar quarter, billed with its last month (March, June,
    September, December). Yearly: the calendar year, billed with December. None when the month
    does not close a period of this cycle.
    """
    kind = BillingCycle(cycle)
    end = add_months(date(year, month, 1), 1)
    if kind is BillingCycle.MONTHLY:
        return date(year, month, 1), end
    if kind is BillingCycle.QUARTERLY:
        return (add_months(end, -3), end) if month % 3 == 0 else None
    return (date(year, 1, 1), end) if month == 12 else None


def months_in(start: date, end: date) -> int:
    """Whole months in a billing period (1, 3 or 12)."""
    return (end.year - start.year) * 12 + end.month - start.month
