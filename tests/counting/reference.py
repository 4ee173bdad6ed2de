"""Reference aggregation in plain Python with zoneinfo: what bucketed counts must equal."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from camcount.counting.business_hours import is_open, open_intervals
from camcount.counting.ingest import CountEvent


def local_bucket(at: datetime, timezone: str, unit: str) -> str:
    """The bucket's local start with its UTC offset, truncated in local wall-clock time."""
    local = at.astimezone(ZoneInfo(timezone))
    if unit == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        if unit == "week":
            day = (day.replace(tzinfo=None) - timedelta(days=day.weekday())).replace(tzinfo=day.tzinfo)
        elif unit == "month":
            day = day.replace(day=1)
        # Re-resolve the offset at the new wall-clock time (midnight may have another offset).
        start = day.replace(tzinfo=None).replace(tzinfo=ZoneInfo(timezone))
    return start.isoformat()


def reference_counts(
    events: list[CountEvent],
    timezone_of: dict[int, str],
    unit: str,
    *,
    business_hours: dict[int, dict[str, list[list[str]]]] | None = None,
) -> dict[tuple[str, int], dict[str, int]]:
    """(bucket label, camera_id) -> {count_type: sum}, each event once per (camera, event_id)."""
    seen: set[tuple[int, str]] = set()
    out: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in events:
        if (e.camera_id, e.event_id) in seen:
            continue
        seen.add((e.camera_id, e.event_id))
        tz = timezone_of[e.camera_id]
        if business_hours is not None:
            local = e.occurred_at.astimezone(ZoneInfo(tz))
            intervals = open_intervals(business_hours[e.camera_id])
            if not is_open(intervals, local.isoweekday(), local.hour * 60 + local.minute):
                continue
        out[(local_bucket(e.occurred_at, tz, unit), e.camera_id)][e.count_type] += e.count_value
    return {k: dict(v) for k, v in out.items()}
