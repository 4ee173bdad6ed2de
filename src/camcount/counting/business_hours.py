"""Business hours of a site: the format, its validation, and the form the count queries use.

Format (stored in ``sites.business_hours``, local wall-clock time of the site's time zone)::

    {"mon": [["09:00", "12:30"], ["13:30", "21:00"]], "sat": [["10:00", "18:00"]]}

- Keys are ``mon`` ``tue`` ``wed`` ``thu`` ``fri`` ``sat`` ``sun``; a day that is missing (or has an
  empty list) is closed. An empty object ``{}`` means *always open* (no business-hours filter).
- Each interval is ``[start, end]`` as ``"HH:MM"`` (24-hour clock), start inclusive, end exclusive,
  ``start < end``; ``"24:00"`` is allowed as an end (until midnight). Intervals of one day must not
  overlap. An interval past midnight is written as two: ``"fri": [["22:00", "24:00"]]`` and
  ``"sat": [["00:00", "02:00"]]``.
- Minutes must be a multiple of 15 (``00``, ``15``, ``30``, ``45``). Counts are kept in 15-minute
  UTC buckets and every time zone offset in use is a multiple of 15 minutes, so a 15-minute local
  boundary is always a bucket boundary and the business-hours filter is exact, never approximate.

:func:`validate_business_hours` is what the sites API calls before storing a value; it returns the
normalised form (lower-case keys, intervals sorted).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from camcount.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO day of week 1..7
GRANULARITY_MINUTES = 15
MAX_INTERVALS_PER_DAY = 12
_TIME_RE = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])")
FIELD = "business_hours"


@dataclass(frozen=True)
class OpenInterval:
    """One opening interval as ISO day of week (1 = Monday) and minutes since local midnight."""

    isodow: int
    start_minute: int
    end_minute: int


def _minutes(value: Any, where: str, *, is_end: bool) -> int:
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise InvalidInput(where, 'must be a time "HH:MM" (24-hour clock)')
    hours, minutes = int(value[:2]), int(value[3:])
    total = hours * 60 + minutes
    if total > 24 * 60 or (total == 24 * 60 and not is_end):
        raise InvalidInput(where, '"24:00" is allowed only as the end of an interval')
    if minutes % GRANULARITY_MINUTES:
        raise InvalidInput(where, "minutes must be 00, 15, 30 or 45")
    return total


def validate_business_hours(value: Any) -> dict[str, list[list[str]]]:
    """Check a business-hours value; return it normalised. Raises :class:`InvalidInput`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(FIELD, 'must be an object such as {"mon": [["09:00", "18:00"]]}')
    normalised: dict[str, list[list[str]]] = {}
    for raw_day, intervals in value.items():
        day = raw_day.lower() if isinstance(raw_day, str) else raw_day
        if day not in DAYS:
            raise InvalidInput(FIELD, f"unknown day {str(raw_day)[:10]!r}; use {', '.join(DAYS)}")
        if day in normalised:
            raise InvalidInput(f"{FIELD}.{day}", "is given twice")
        if not isinstance(intervals, list):
            raise InvalidInput(f"{FIELD}.{day}", 'must be a list of ["HH:MM", "HH:MM"] intervals')
        if len(intervals) > MAX_INTERVALS_PER_DAY:
            raise InvalidInput(f"{FIELD}.{day}", f"at most {MAX_INTERVALS_PER_DAY} intervals per day")
        parsed: list[tuple[int, int, str, str]] = []
        for index, interval in enumerate(intervals):
            where = f"{FIELD}.{day}[{index}]"
            if not isinstance(interval, list | tuple) or len(interval) != 2:
                raise InvalidInput(where, 'must be a pair ["HH:MM", "HH:MM"]')
            start = _minutes(interval[0], f"{where}[0]", is_end=False)
            end = _minutes(interval[1], f"{where}[1]", is_end=True)
            if start >= end:
                raise InvalidInput(
                    where, "start must be before end (split intervals that pass midnight in two)"
                )
            parsed.append((start, end, interval[0], interval[1]))
        parsed.sort()
        for previous, current in itertools.pairwise(parsed):
            if current[0] < previous[1]:
                raise InvalidInput(f"{FIELD}.{day}", "intervals overlap")
        normalised[day] = [[p[2], p[3]] for p in parsed]
    return {day: normalised[day] for day in DAYS if day in normalised}


def open_intervals(value: Mapping[str, Any]) -> list[OpenInterval]:
    """The intervals of a stored (valid) value; an empty value means open all week."""
    hours = validate_business_hours(value)
    if not hours:
        return [OpenInterval(dow, 0, 24 * 60) for dow in range(1, 8)]
    return [
        OpenInterval(
            DAYS.index(day) + 1,
            _minutes(start, FIELD, is_end=False),
            _minutes(end, FIELD, is_end=True),
        )
        for day, intervals in hours.items()
        for start, end in intervals
    ]


def is_open(intervals: list[OpenInterval], isodow: int, minute_of_day: int) -> bool:
    """Whether a local (day of week, minute of day) falls in one of the intervals."""
    return any(i.isodow == isodow and i.start_minute <= minute_of_day < i.end_minute for i in intervals)
