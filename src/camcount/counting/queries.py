"""Reading counts: raw events with keyset pagination, and time-bucketed aggregates from rollups.

Events are listed in (occurred_at, camera_id, event_id) order, a total order, so a keyset cursor
(the last row's key) never skips or repeats a row, however many arrive meanwhile.

Aggregates never scan raw events: they sum ``counting_rollups``, kept exact at ingestion per
15-minute UTC bucket. Every UTC offset in use since 2000 is a whole number of 15 minutes
(+05:30, +05:45, +08:45, -09:30, ...), so every local hour, day, week or month in any IANA time
zone is a union of whole 15-minute UTC buckets and the sums are exact. Buckets are computed with
``date_trunc(unit, bucket_start, site_timezone)``, which truncates in local time and returns an
absolute time: a local day may last 23 or 25 hours, and the two local 01:00 hours of a fall-back
night stay two buckets (labelled with their offsets, ``01:00-04:00`` and ``01:00-05:00``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection, sql

from camcount.counting.business_hours import open_intervals
from camcount.db.pools import Database
from camcount.db.scope import tenant_fetch, tenant_transaction
from camcount.errors import InvalidInput, NotFound
from camcount.tenancy.models import TenantLocation

ROLLUP_MINUTES = 15
MAX_RANGE = timedelta(days=3660)
MAX_EVENT_PAGE = 1000
MAX_COUNT_PAGE = 5000


class BucketUnit(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting on Monday
    MONTH = "month"


class GroupBy(StrEnum):
    CAMERA = "camera"
    SITE = "site"
    COUNT_TYPE = "count_type"


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class Scope:
    """Which events: cameras, sites, count types and a half-open time range [start, end)."""

    camera_ids: Sequence[int] = ()
    site_ids: Sequence[int] = ()
    count_types: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_key: list[Any] | None  # the last item's key when more follow; None = this is the end


@dataclass(frozen=True)
class CameraPlace:
    camera_id: int
    site_id: int
    timezone: str
    business_hours: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_range(start: datetime | None, end: datetime | None, *, aligned: bool) -> None:
    """Times must carry an offset, start < end, and for aggregates sit on 15-minute boundaries."""
    for name, value in (("from", start), ("to", end)):
        if value is None:
            continue
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(name, "must carry a UTC offset, e.g. 2024-03-10T00:00:00-05:00")
        if aligned and (value.second or value.microsecond or value.minute % ROLLUP_MINUTES):
            raise InvalidInput(name, "must be on a 15-minute boundary (counts are kept per 15 minutes)")
    if start is not None and end is not None:
        if start >= end:
            raise InvalidInput("to", "must be after from")
        if end - start > MAX_RANGE:
            raise InvalidInput("to", f"the range may span at most {MAX_RANGE.days} days")


async def cameras_in_scope(conn: AsyncConnection, scope: Scope) -> list[CameraPlace]:
    """The tenant's cameras matching the camera and site filters; a named one that is missing
    (or another tenant's) raises NotFound, without saying which kind of missing it is."""
    conditions = [sql.SQL("true")]
    params: dict[str, Any] = {}
    if scope.camera_ids:
        conditions.append(sql.SQL("c.id = ANY(%(cameras)s)"))
        params["cameras"] = sorted(set(scope.camera_ids))
    if scope.site_ids:
        conditions.append(sql.SQL("c.site_id = ANY(%(sites)s)"))
        params["sites"] = sorted(set(scope.site_ids))
    query = sql.SQL(
        "SELECT c.id, c.site_id, s.timezone, s.business_hours FROM cameras c "
        "JOIN sites s ON s.tenant_id = c.tenant_id AND s.id = c.site_id WHERE {} ORDER BY c.id"
    ).format(sql.SQL(" AND ").join(conditions))
    cur = await conn.execute(query, params)
    places = [CameraPlace(int(r[0]), int(r[1]), str(r[2]), r[3] or {}) for r in await cur.fetchall()]
    if scope.camera_ids and {p.camera_id for p in places} != set(scope.camera_ids):
        # Either unknown, or not in the named sites: say so without telling the cases apart.
        raise NotFound("camera not found")
    if scope.site_ids and not scope.camera_ids:
        await _check_sites_exist(conn, scope.site_ids)
    return places


async def _check_sites_exist(conn: AsyncConnection, site_ids: Sequence[int]) -> None:
    cur = await conn.execute("SELECT count(*) FROM sites WHERE id = ANY(%s)", (sorted(set(site_ids)),))
    row = await cur.fetchone()
    if row is None or int(row[0]) != len(set(site_ids)):
        raise NotFound("site not found")


# -- events -----------------------------------------------------------------------------------


def event_json(row: Sequence[Any]) -> dict[str, Any]:
    camera_id, event_id, count_type, object_class, value, confidence, occurred_at, received_at = row
    return {
        "id": f"{camera_id}:{event_id}",
        "camera_id": camera_id,
        "event_id": event_id,
        "count_type": count_type,
        "object_class": object_class or None,
        "count_value": value,
        "confidence": None if confidence is None else round(float(confidence), 6),
        "occurred_at": occurred_at.isoformat(),
        "received_at": received_at.isoformat(),
    }


async def list_events(
    conn: AsyncConnection,
    scope: Scope,
    *,
    after: Sequence[Any] | None = None,
    limit: int = 100,
    order: Order = Order.ASC,
) -> Page:
    """One page of events in (occurred_at, camera_id, event_id) order; ``after`` is a page's next_key."""
    check_range(scope.start, scope.end, aligned=False)
    if not 1 <= limit <= MAX_EVENT_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_EVENT_PAGE}")
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": limit + 1}
    if scope.camera_ids or scope.site_ids:
        places = await cameras_in_scope(conn, scope)
        conditions.append(sql.SQL("camera_id = ANY(%(cameras)s)"))
        params["cameras"] = [p.camera_id for p in places]
    if scope.count_types:
        conditions.append(sql.SQL("count_type = ANY(%(types)s)"))
        params["types"] = sorted(set(scope.count_types))
    if scope.start is not None:
        conditions.append(sql.SQL("occurred_at >= %(start)s"))
        params["start"] = scope.start
    if scope.end is not None:
        conditions.append(sql.SQL("occurred_at < %(end)s"))
        params["end"] = scope.end
    if after is not None:
        occurred_at, camera_id, event_id = _event_key(after)
        comparison = ">" if order is Order.ASC else "<"
        conditions.append(
            sql.SQL("(occurred_at, camera_id, event_id) {} (%(k_at)s, %(k_cam)s, %(k_ev)s)").format(
                sql.SQL(comparison)
            )
        )
        params.update(k_at=occurred_at, k_cam=camera_id, k_ev=event_id)
    direction = sql.SQL("ASC" if order is Order.ASC else "DESC")
    query = sql.SQL(
        "SELECT camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at, "
        "received_at FROM counting_results WHERE {where} "
        "ORDER BY occurred_at {d}, camera_id {d}, event_id {d} LIMIT %(limit)s"
    ).format(where=sql.SQL(" AND ").join(conditions), d=direction)
    cur = await conn.execute(query, params)
    rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_key = [rows[-1][6].isoformat(), rows[-1][0], rows[-1][1]] if more else None
    return Page([event_json(r) for r in rows], next_key)


def _event_key(key: Sequence[Any]) -> tuple[datetime, int, str]:
    try:
        at, camera_id, event_id = key
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None or isinstance(camera_id, bool):
            raise ValueError("naive")
        return parsed, int(camera_id), str(event_id)
    except (TypeError, ValueError):
        raise InvalidInput("cursor", "is not a cursor from this listing") from None


# -- aggregates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountsQuery:
    scope: Scope
    bucket: BucketUnit = BucketUnit.HOUR
    group_by: GroupBy = GroupBy.CAMERA
    business_hours: bool = False


_PER_TYPE = """per_type AS (
    SELECT date_trunc(%(unit)s, r.bucket_start, p.timezone) AS bucket, p.timezone, {key} AS key,
           r.count_type, sum(r.total) AS total, sum(r.events) AS events, sum(r.confidence_sum) AS conf
    FROM place p
    JOIN counting_rollups r ON r.camera_id = p.camera_id
    WHERE r.bucket_start >= %(start)s AND r.bucket_start < %(end)s {filters}
    GROUP BY 1, 2, 3, 4
)"""

# Both statements sum the rollups per bucket, key and count type the same way: ``{per_type}``.
_COUNTS = """
WITH place AS (
    SELECT * FROM unnest(%(p_camera)s::bigint[], %(p_site)s::bigint[], %(p_tz)s::text[])
           AS p (camera_id, site_id, timezone)
), {per_type}
SELECT bucket, timezone, key, jsonb_object_agg(count_type, total ORDER BY count_type), sum(events),
       sum(conf)
FROM per_type
{after}
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
LIMIT %(limit)s
"""

_BUSINESS_HOURS = """
AND EXISTS (
    SELECT 1 FROM unnest(%(h_site)s::bigint[], %(h_dow)s::integer[], %(h_start)s::integer[],
                         %(h_end)s::integer[]) AS h (site_id, dow, start_minute, end_minute)
    WHERE h.site_id = p.site_id
      AND h.dow = extract(isodow FROM r.bucket_start AT TIME ZONE p.timezone)
      AND extract(hour FROM r.bucket_start AT TIME ZONE p.timezone) * 60
          + extract(minute FROM r.bucket_start AT TIME ZONE p.timezone)
          BETWEEN h.start_minute AND h.end_minute - 1
)
"""

_KEY_COLUMN = {
    GroupBy.CAMERA: "p.camera_id",
    GroupBy.SITE: "p.site_id",
    GroupBy.COUNT_TYPE: "r.count_type",
}


async def bucketed_counts(
    conn: AsyncConnection,
    query: CountsQuery,
    *,
    after: Sequence[Any] | None = None,
    limit: int = 1000,
) -> Page:
    """One page of counts per (bucket, time zone, group) in that order, from the rollups alone."""
    scope = query.scope
    if scope.start is None or scope.end is None:
        raise InvalidInput("from", "from and to are both required")
    check_range(scope.start, scope.end, aligned=True)
    if not 1 <= limit <= MAX_COUNT_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_COUNT_PAGE}")
    places = await cameras_in_scope(conn, scope)
    if not places:
        return Page([], None)
    params: dict[str, Any] = {
        "p_camera": [p.camera_id for p in places],
        "p_site": [p.site_id for p in places],
        "p_tz": [p.timezone for p in places],
        "unit": query.bucket.value,
        "start": scope.start,
        "end": scope.end,
        "limit": limit + 1,
    }
    filters, after_clause = _rollup_filters(scope, query, after, params)
    if query.business_hours:
        filters.append(sql.SQL(_BUSINESS_HOURS))
        params.update(_business_hours_params(places))
    statement = sql.SQL(_COUNTS).format(per_type=_per_type(query, filters), after=after_clause)
    cur = await conn.execute(statement, params)
    rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_count_json(row, query.group_by) for row in rows]
    next_key = [rows[-1][0].isoformat(), rows[-1][1], rows[-1][2]] if more else None
    return Page(items, next_key)


# The same counts in one statement that also finds the cameras (no business hours: their filter
# is built from the sites' opening times, read first). ``found`` says how many of the named cameras
# and sites exist, so a missing one is still NotFound; it comes back even when no bucket does.
_COUNTS_ONE = """
WITH place AS (
    SELECT c.id AS camera_id, c.site_id, s.timezone
    FROM cameras c JOIN sites s ON s.tenant_id = c.tenant_id AND s.id = c.site_id
    WHERE {places}
), found AS (
    SELECT (SELECT count(*) FROM place) AS cameras, {sites} AS sites
), {per_type}, page AS (
    SELECT bucket, timezone, key, jsonb_object_agg(count_type, total ORDER BY count_type) AS counts,
           sum(events) AS events, sum(conf) AS conf
    FROM per_type
    {after}
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    LIMIT %(limit)s
)
SELECT f.cameras, f.sites, p.bucket, p.timezone, p.key, p.counts, p.events, p.conf
FROM found f LEFT JOIN page p ON true
ORDER BY p.bucket, p.timezone, p.key
"""


async def fetch_counts(
    db: Database,
    location: TenantLocation,
    query: CountsQuery,
    *,
    after: Sequence[Any] | None = None,
    limit: int = 1000,
) -> Page:
    """:func:`bucketed_counts` in its own tenant transaction, in one round trip when it can.

    Without business hours: the camera lookup and the sums in one statement, sent with the tenant
    context as one pipeline (:func:`camcount.db.scope.tenant_fetch`). With business hours, the
    sites' opening times are read first (two statements, as :func:`bucketed_counts`).
    """
    if query.business_hours:
        async with tenant_transaction(db, location) as conn:
            return await bucketed_counts(conn, query, after=after, limit=limit)
    scope = query.scope
    if scope.start is None or scope.end is None:
        raise InvalidInput("from", "from and to are both required")
    check_range(scope.start, scope.end, aligned=True)
    if not 1 <= limit <= MAX_COUNT_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_COUNT_PAGE}")
    places: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {
        "unit": query.bucket.value,
        "start": scope.start,
        "end": scope.end,
        "limit": limit + 1,
    }
    sites: sql.Composable = sql.SQL("NULL::bigint")
    if scope.camera_ids:
        places.append(sql.SQL("c.id = ANY(%(cameras)s)"))
        params["cameras"] = sorted(set(scope.camera_ids))
    if scope.site_ids:
        places.append(sql.SQL("c.site_id = ANY(%(sites)s)"))
        params["sites"] = sorted(set(scope.site_ids))
        sites = sql.SQL("(SELECT count(*) FROM sites WHERE id = ANY(%(sites)s))")
    filters, after_clause = _rollup_filters(scope, query, after, params)
    statement = sql.SQL(_COUNTS_ONE).format(
        places=sql.SQL(" AND ").join(places),
        sites=sites,
        per_type=_per_type(query, filters),
        after=after_clause,
    )
    rows = await tenant_fetch(db, location, statement.as_string(), params)
    cameras_found, sites_found = rows[0][0], rows[0][1]
    if scope.camera_ids and int(cameras_found) != len(set(scope.camera_ids)):
        raise NotFound("camera not found")  # unknown, or not in the named sites: alike
    if scope.site_ids and not scope.camera_ids and int(sites_found) != len(set(scope.site_ids)):
        raise NotFound("site not found")
    buckets = [row[2:] for row in rows if row[2] is not None]
    more = len(buckets) > limit
    buckets = buckets[:limit]
    items = [_count_json(row, query.group_by) for row in buckets]
    next_key = [buckets[-1][0].isoformat(), buckets[-1][1], buckets[-1][2]] if more else None
    return Page(items, next_key)


def _per_type(query: CountsQuery, filters: list[sql.Composable]) -> sql.Composed:
    return sql.SQL(_PER_TYPE).format(
        key=sql.SQL(_KEY_COLUMN[query.group_by]), filters=sql.SQL(" ").join(filters)
    )


def _rollup_filters(
    scope: Scope, query: CountsQuery, after: Sequence[Any] | None, params: dict[str, Any]
) -> tuple[list[sql.Composable], sql.Composable]:
    """The count-type filter and the keyset cursor, shared by both counts statements (adds params)."""
    filters: list[sql.Composable] = []
    if scope.count_types:
        filters.append(sql.SQL("AND r.count_type = ANY(%(types)s)"))
        params["types"] = sorted(set(scope.count_types))
    after_clause: sql.Composable = sql.SQL("")
    if after is not None:
        bucket, timezone, key = _count_key(after, query.group_by)
        # bucket >= the cursor's bucket implies bucket_start >= it: the rollup index narrows the scan.
        filters.append(sql.SQL("AND r.bucket_start >= %(k_bucket)s"))
        after_clause = sql.SQL("WHERE (bucket, timezone, key) > (%(k_bucket)s, %(k_tz)s, %(k_key)s)")
        params.update(k_bucket=bucket, k_tz=timezone, k_key=key)
    return filters, after_clause


def _business_hours_params(places: Sequence[CameraPlace]) -> dict[str, list[int]]:
    site_hours: dict[int, dict[str, Any]] = {p.site_id: p.business_hours for p in places}
    columns: dict[str, list[int]] = {"h_site": [], "h_dow": [], "h_start": [], "h_end": []}
    for site_id, hours in sorted(site_hours.items()):
        for interval in open_intervals(hours):
            columns["h_site"].append(site_id)
            columns["h_dow"].append(interval.isodow)
            columns["h_start"].append(interval.start_minute)
            columns["h_end"].append(interval.end_minute)
    return columns


def _count_key(key: Sequence[Any], group_by: GroupBy) -> tuple[datetime, str, int | str]:
    try:
        at, timezone, group = key
        bucket = datetime.fromisoformat(at)
        if bucket.tzinfo is None or not isinstance(timezone, str):
            raise ValueError("naive")
        if group_by is GroupBy.COUNT_TYPE:
            return bucket, timezone, str(group)
        if isinstance(group, bool) or not isinstance(group, int):
            raise ValueError("group")
        return bucket, timezone, group
    except (TypeError, ValueError):
        raise InvalidInput("cursor", "is not a cursor from this listing") from None


def _count_json(row: Sequence[Any], group_by: GroupBy) -> dict[str, Any]:
    bucket, timezone, key, counts, events, confidence_sum = row
    label = bucket.astimezone(zone(timezone)).isoformat()
    counts = {str(k): int(v) for k, v in counts.items()}
    events = int(events)
    item: dict[str, Any] = {
        "id": f"{group_by.value}:{key}@{label}[{timezone}]",
        "bucket": label,
        "timezone": timezone,
        f"{group_by.value}_id" if group_by is not GroupBy.COUNT_TYPE else "count_type": key,
        "counts": counts,
        "total": sum(counts.values()),
        "events": events,
        "avg_confidence": round(float(confidence_sum) / events, 4) if events else None,
    }
    if group_by is not GroupBy.COUNT_TYPE:
        people_in, people_out = counts.get("in", 0), counts.get("out", 0)
        item.update({"in": people_in, "out": people_out, "net": people_in - people_out})
    return item
