"""Bucketed counts against a Python reference (DST weeks, +05:45), business hours, occupancy, pages."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest

from camcount.counting.ingest import CountEvent
from camcount.counting.queries import (
    BucketUnit,
    CountsQuery,
    GroupBy,
    Order,
    Page,
    Scope,
    bucketed_counts,
    list_events,
)
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import InvalidInput, NotFound
from camcount.tenancy.models import Tenant
from tests.counting.helpers import event, ingest, make_camera, make_site
from tests.counting.reference import reference_counts
from tests.fixtures.tenants import TenantFactory

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ZONES = ("America/New_York", "Europe/Paris", "Asia/Kathmandu")
# Weeks holding a daylight-saving change in New York and Paris (Kathmandu has none: +05:45 all year).
FALL_WEEK = (datetime(2024, 10, 26, tzinfo=UTC), datetime(2024, 11, 5, tzinfo=UTC))
SPRING_WEEK = (datetime(2024, 3, 8, tzinfo=UTC), datetime(2024, 4, 2, tzinfo=UTC))


async def _all_counts(
    db: Database, tenant: Tenant, query: CountsQuery, limit: int = 5000
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    async with tenant_transaction(db, tenant.location) as conn:
        while True:
            page = await bucketed_counts(conn, query, after=after, limit=limit)
            items.extend(page.items)
            if page.next_key is None:
                return items
            after = page.next_key


async def _random_week(
    db: Database,
    tenant: Tenant,
    window: tuple[datetime, datetime],
    *,
    business_hours: dict[str, Any] | None = None,
) -> tuple[list[CountEvent], dict[int, str]]:
    timezone_of: dict[int, str] = {}
    for name in ZONES:
        site = await make_site(db, tenant, name=name, timezone=name, business_hours=business_hours)
        timezone_of[await make_camera(db, tenant, site)] = name
    rng = random.Random(42)
    start, end = window
    seconds = int((end - start).total_seconds())
    events = [
        CountEvent(f"w{i}", camera, rng.choice(["in", "out", "dwell"]), rng.randint(0, 20),
                   start + timedelta(seconds=rng.randrange(seconds)), rng.random())
        for i in range(4000)
        for camera in [rng.choice(list(timezone_of))]
    ]  # fmt: skip
    await ingest(db, tenant, events, now=NOW)
    await ingest(db, tenant, events[::3], now=NOW)  # retries add nothing
    return events, timezone_of


def _as_reference(items: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, int]]:
    return {(item["bucket"], item["camera_id"]): item["counts"] for item in items}


@pytest.mark.parametrize("window", [FALL_WEEK, SPRING_WEEK], ids=["fall-back", "spring-forward"])
@pytest.mark.parametrize("unit", list(BucketUnit))
async def test_bucketed_counts_match_a_zoneinfo_reference_across_daylight_saving(
    db: Database, make_tenant: TenantFactory, window: tuple[datetime, datetime], unit: BucketUnit
) -> None:
    tenant = await make_tenant()
    events, timezone_of = await _random_week(db, tenant, window)

    items = await _all_counts(db, tenant, CountsQuery(Scope(start=window[0], end=window[1]), bucket=unit))

    assert _as_reference(items) == reference_counts(events, timezone_of, unit.value)
    assert len(items) == len(_as_reference(items))


async def test_the_fall_back_day_has_25_hourly_buckets_and_the_repeated_hour_stays_two(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    site = await make_site(db, tenant, timezone="America/New_York")
    camera = await make_camera(db, tenant, site)
    day_start = datetime(2024, 11, 3, tzinfo=ZoneInfo("America/New_York"))  # 00:00-04:00
    events = [
        event(camera, f"h{m}", day_start.astimezone(UTC) + timedelta(minutes=m))
        for m in range(0, 25 * 60, 30)
    ]
    await ingest(db, tenant, events, now=NOW)
    day_end = datetime(2024, 11, 4, tzinfo=ZoneInfo("America/New_York"))
    scope = Scope(start=day_start, end=day_end)

    hours = await _all_counts(db, tenant, CountsQuery(scope, bucket=BucketUnit.HOUR))
    days = await _all_counts(db, tenant, CountsQuery(scope, bucket=BucketUnit.DAY))

    labels = [item["bucket"] for item in hours]
    assert len(labels) == 25
    assert labels[1:3] == ["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00"]
    assert {item["in"] for item in hours} == {2}
    assert [(d["bucket"], d["in"]) for d in days] == [("2024-11-03T00:00:00-04:00", 50)]


async def test_a_plus_0545_zone_buckets_hours_at_quarter_past_utc(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant, timezone="Asia/Kathmandu"))
    # 04:14 UTC is 09:59 local, 04:15 UTC is 10:00 local: one event each side of the local hour.
    base = datetime(2024, 6, 1, 4, 0, tzinfo=UTC)
    await ingest(
        db,
        tenant,
        [
            event(camera, "a", base + timedelta(minutes=14)),
            event(camera, "b", base + timedelta(minutes=15), 5),
        ],
        now=NOW,
    )

    hours = await _all_counts(
        db, tenant, CountsQuery(Scope(start=base - timedelta(hours=1), end=base + timedelta(hours=1)))
    )

    assert [(h["bucket"], h["in"]) for h in hours] == [
        ("2024-06-01T09:00:00+05:45", 1),
        ("2024-06-01T10:00:00+05:45", 5),
    ]


def test_every_offset_of_every_iana_zone_since_2000_is_a_multiple_of_15_minutes() -> None:
    """The argument for 15-minute rollups: checked weekly from 2000 to 2040 in every zone."""
    odd: set[tuple[str, timedelta]] = set()
    instants = [datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=3 * i) for i in range(0, 40 * 122)]
    for name in sorted(available_timezones()):
        tz = ZoneInfo(name)
        offsets = {instant.astimezone(tz).utcoffset() for instant in instants}
        odd |= {(name, o) for o in offsets if o is not None and o % timedelta(minutes=15)}
    assert odd == set()


async def test_business_hours_keep_only_local_opening_times(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    hours = {
        "mon": [["09:00", "12:30"], ["13:45", "21:00"]],
        "sat": [["10:00", "24:00"]],
        "sun": [["00:00", "02:15"]],
    }
    events, timezone_of = await _random_week(db, tenant, FALL_WEEK, business_hours=hours)
    query = CountsQuery(
        Scope(start=FALL_WEEK[0], end=FALL_WEEK[1]), bucket=BucketUnit.HOUR, business_hours=True
    )

    items = await _all_counts(db, tenant, query)

    expected = reference_counts(events, timezone_of, "hour", business_hours=dict.fromkeys(timezone_of, hours))
    assert _as_reference(items) == expected
    assert 0 < sum(sum(v.values()) for v in expected.values()) < sum(e.count_value for e in events)


async def test_in_out_and_net_per_site_and_per_count_type(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    site = await make_site(db, tenant, timezone="Europe/Paris")
    door, gate = (
        await make_camera(db, tenant, site, name="door"),
        await make_camera(db, tenant, site, name="gate"),
    )
    at = datetime(2024, 6, 1, 8, tzinfo=UTC)
    await ingest(db, tenant, [
        event(door, "1", at, 10, "in"), event(gate, "2", at, 5, "in"), event(door, "3", at, 4, "out"),
        event(gate, "4", at + timedelta(hours=1), 6, "out"), event(gate, "5", at, 7, "occupancy"),
    ], now=NOW)  # fmt: skip
    scope = Scope(start=at, end=at + timedelta(hours=2))

    by_site = await _all_counts(db, tenant, CountsQuery(scope, group_by=GroupBy.SITE, bucket=BucketUnit.DAY))
    by_type = await _all_counts(
        db, tenant, CountsQuery(scope, group_by=GroupBy.COUNT_TYPE, bucket=BucketUnit.DAY)
    )

    [day] = by_site
    assert (day["site_id"], day["in"], day["out"], day["net"], day["counts"]) == (
        site,
        15,
        10,
        5,
        {"in": 15, "occupancy": 7, "out": 10},
    )
    assert day["bucket"] == "2024-06-01T00:00:00+02:00"
    assert [(t["count_type"], t["total"]) for t in by_type] == [("in", 15), ("occupancy", 7), ("out", 10)]
    assert len({t["id"] for t in by_type}) == 3


async def test_count_pages_concatenate_to_the_whole_answer(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    await _random_week(db, tenant, FALL_WEEK)
    query = CountsQuery(Scope(start=FALL_WEEK[0], end=FALL_WEEK[1]), group_by=GroupBy.COUNT_TYPE)

    whole = await _all_counts(db, tenant, query)
    paged = await _all_counts(db, tenant, query, limit=7)

    assert paged == whole
    assert len(whole) > 100


async def test_event_pages_never_skip_or_repeat_even_with_ties_and_late_arrivals(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    site = await make_site(db, tenant)
    cameras = [await make_camera(db, tenant, site, name=f"c{i}") for i in range(3)]
    at = datetime(2024, 6, 1, tzinfo=UTC)
    # Many events share one timestamp: the order must still be total.
    events = [event(cameras[i % 3], f"p{i:03d}", at + timedelta(minutes=i // 10)) for i in range(95)]
    await ingest(db, tenant, events, now=NOW)

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        async with tenant_transaction(db, tenant.location) as conn:
            page: Page = await list_events(conn, Scope(), after=after, limit=10)
        seen.extend(item["id"] for item in page.items)
        pages += 1
        if pages == 2:  # late events before and after the cursor: only the later ones show up
            await ingest(
                db,
                tenant,
                [event(cameras[0], "late-early", at), event(cameras[0], "late-last", at + timedelta(days=1))],
                now=NOW,
            )
        if page.next_key is None:
            break
        after = page.next_key

    expected = sorted((e.occurred_at, e.camera_id, e.event_id) for e in events)
    assert seen == [f"{c}:{e}" for _, c, e in expected] + [f"{cameras[0]}:late-last"]
    assert pages == 10


async def test_event_listing_filters_and_descending_order(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    site_1, site_2 = await make_site(db, tenant, name="a"), await make_site(db, tenant, name="b")
    cam_1, cam_2 = await make_camera(db, tenant, site_1), await make_camera(db, tenant, site_2)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    await ingest(
        db,
        tenant,
        [
            event(cam_1, str(i), at + timedelta(hours=i), count_type="in" if i % 2 else "out")
            for i in range(10)
        ]
        + [event(cam_2, "x", at)],
        now=NOW,
    )

    async with tenant_transaction(db, tenant.location) as conn:
        by_site = await list_events(
            conn,
            Scope(
                site_ids=[site_1],
                count_types=["in"],
                start=at + timedelta(hours=2),
                end=at + timedelta(hours=8),
            ),
        )
        newest = await list_events(conn, Scope(camera_ids=[cam_1]), order=Order.DESC, limit=3)
        rest = await list_events(
            conn, Scope(camera_ids=[cam_1]), order=Order.DESC, limit=30, after=newest.next_key
        )

    assert [i["event_id"] for i in by_site.items] == ["3", "5", "7"]
    assert [i["event_id"] for i in newest.items] == ["9", "8", "7"]
    assert [i["event_id"] for i in rest.items] == ["6", "5", "4", "3", "2", "1", "0"]
    assert rest.next_key is None


async def test_unknown_cameras_sites_and_bad_ranges_are_refused(
    db: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    site_b = await make_site(db, tenant_b)
    await make_camera(db, tenant_b, site_b, name="one")
    camera_b = await make_camera(db, tenant_b, site_b, name="two")
    at = datetime(2024, 6, 1, tzinfo=UTC)
    async with tenant_transaction(db, tenant_a.location) as conn:
        with pytest.raises(NotFound):
            await list_events(conn, Scope(camera_ids=[camera_b]))
        with pytest.raises(NotFound):
            await bucketed_counts(
                conn, CountsQuery(Scope(site_ids=[site_b + 1000], start=at, end=at + timedelta(hours=1)))
            )
        with pytest.raises(InvalidInput, match="15-minute"):
            await bucketed_counts(
                conn, CountsQuery(Scope(start=at + timedelta(minutes=7), end=at + timedelta(hours=1)))
            )
        with pytest.raises(InvalidInput, match="after"):
            await bucketed_counts(conn, CountsQuery(Scope(start=at, end=at)))
        with pytest.raises(InvalidInput, match="cursor"):
            await list_events(conn, Scope(), after=["x", 1, "e"])
