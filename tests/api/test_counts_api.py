"""GET /t/{slug}/counts and /counts.csv over HTTP: reference sums, DST labels, CSV, other tenants."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from camcount.counting.ingest import CountEvent
from camcount.db.pools import Database
from tests.counting.helpers import ingest, make_camera, make_device_key, make_site
from tests.counting.reference import reference_counts
from tests.fixtures.api import ApiTenant, ApiTenantFactory

PARIS = ZoneInfo("Europe/Paris")
# The week of the October 2024 change in Paris (Sunday 27th: 03:00 CEST becomes 02:00 CET).
START = datetime(2024, 10, 21, tzinfo=PARIS)
END = datetime(2024, 10, 28, tzinfo=PARIS)
NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def _tenant_with_counts(
    db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> tuple[ApiTenant, list[CountEvent], dict[int, str]]:
    owner = await make_api_tenant(placement)
    site = await make_site(db, owner.tenant, timezone="Europe/Paris")
    cameras = [await make_camera(db, owner.tenant, site, name=f"c{i}") for i in range(2)]
    rng = random.Random(3)
    span = int((END - START).total_seconds())
    events = [
        CountEvent(f"k{i}", rng.choice(cameras), rng.choice(["in", "out"]), rng.randint(1, 9),
                   START.astimezone(UTC) + timedelta(seconds=rng.randrange(span)), 0.75)
        for i in range(1500)
    ]  # fmt: skip
    await ingest(db, owner.tenant, events, now=NOW)
    return owner, events, dict.fromkeys(cameras, "Europe/Paris")


def _params(**extra: Any) -> dict[str, Any]:
    return {"from": START.isoformat(), "to": END.isoformat(), **extra}


async def _all(api: httpx.AsyncClient, owner: ApiTenant, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = _params(**params, **({"cursor": cursor} if cursor else {}))
        response = await api.get(owner.url("/counts"), params=query, headers=owner.headers)
        assert response.status_code == 200, response.text
        items.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def test_hourly_counts_over_a_dst_week_match_the_reference_page_by_page(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    owner, events, timezone_of = await _tenant_with_counts(db, make_api_tenant, placement)

    items = await _all(api, owner, bucket="hour", limit=50)

    got = {(i["bucket"], i["camera_id"]): i["counts"] for i in items}
    assert got == reference_counts(events, timezone_of, "hour")
    labels = {i["bucket"] for i in items}
    # The repeated hour of the change: two buckets, told apart by their offsets.
    assert {"2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"} <= labels
    assert all(i["net"] == i["in"] - i["out"] for i in items)
    assert len({i["id"] for i in items}) == len(items)


async def test_daily_site_counts_and_the_csv_say_the_same(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner, events, _ = await _tenant_with_counts(db, make_api_tenant, "pooled")

    days = await _all(api, owner, bucket="day", group_by="site")
    response = await api.get(
        owner.url("/counts.csv"), params=_params(bucket="day", group_by="site"), headers=owner.headers
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["bucket"], int(r["in"]), int(r["out"]), int(r["net"])) for r in rows] == [
        (d["bucket"], d["in"], d["out"], d["net"]) for d in days
    ]
    assert len(days) == 7
    assert days[-1]["bucket"] == "2024-10-27T00:00:00+02:00"  # the 25-hour day starts at +02:00
    assert sum(d["total"] for d in days) == sum(e.count_value for e in events)
    assert set(rows[0]) >= {"count_in", "count_out", "site_id", "timezone"}


async def test_another_tenants_credentials_and_ids_get_nothing(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    alice = await make_api_tenant(placement)
    bob, _, _ = await _tenant_with_counts(db, make_api_tenant, placement)
    bob_site = await make_site(db, bob.tenant, name="second site")
    bob_camera = await make_camera(db, bob.tenant, bob_site, name="far")  # an id Alice does not have
    alice_key = await make_device_key(db, alice.tenant)

    for path in ("/counts", "/counts.csv"):
        for headers in (alice.headers, {"Authorization": f"Bearer {alice_key}"}):
            response = await api.get(bob.url(path), params=_params(), headers=headers)
            assert response.status_code == 404, response.text
            assert bob.slug not in response.text
        for ids in ({"camera_id": bob_camera}, {"site_id": bob_site}):
            response = await api.get(alice.url(path), params=_params(**ids), headers=alice.headers)
            assert response.status_code == 404, response.text
    empty = await api.get(alice.url("/counts"), params=_params(), headers=alice.headers)
    assert empty.json() == {"items": [], "next_cursor": None}


async def test_bad_count_queries_get_422_with_the_field(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant("pooled")
    bad = [
        {"from": "2024-10-21T00:07:00+02:00", "to": END.isoformat()},
        {"from": END.isoformat(), "to": START.isoformat()},
        {"from": "2024-10-21T00:00:00", "to": END.isoformat()},
        {"to": END.isoformat()},
        _params(bucket="fortnight"),
        _params(group_by="tenant"),
        _params(camera_id="1 OR 1=1"),
        _params(count_type="IN'--"),
        _params(cursor="bm90IGEgY3Vyc29y"),
        _params(limit=10**9),
        {"from": "2024-01-01T00:00:00+00:00", "to": "2999-01-01T00:00:00+00:00"},
    ]
    for params in bad:
        for path in ("/counts", "/counts.csv"):
            response = await api.get(owner.url(path), params=params, headers=owner.headers)
            if path == "/counts.csv" and ("limit" in params or "cursor" in params):  # not csv parameters
                continue
            assert response.status_code == 422, (path, params, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_counts_are_served_from_cache_until_an_ingestion_changes_them(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant("pooled")
    site = await make_site(db, owner.tenant, timezone="Europe/Paris")
    camera = await make_camera(db, owner.tenant, site, name="door")
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    url = owner.url("/counts")
    query = {"bucket": "hour", "group_by": "camera", "from": (hour - timedelta(hours=1)).isoformat(),
             "to": (hour + timedelta(hours=1)).isoformat()}  # fmt: skip

    def event(event_id: str, value: int) -> dict[str, Any]:
        return {"event_id": event_id, "camera_id": camera, "count_type": "in", "count_value": value,
                "occurred_at": hour.isoformat()}  # fmt: skip

    sent = await api.post(
        owner.url("/events"), json={"events": [event("a", 3)]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert sent.status_code == 200, sent.text
    first = await api.get(url, params=query, headers=owner.headers)
    assert [item["total"] for item in first.json()["items"]] == [3]
    # Written behind the API's back: a cached answer does not see it...
    await ingest(db, owner.tenant, [CountEvent("b", camera, "in", 4, hour, 0.9)], now=datetime.now(UTC))
    cached = await api.get(url, params=query, headers=owner.headers)
    assert cached.json() == first.json()
    # ...and an ingestion through the API makes every cached answer of the tenant stale.
    sent = await api.post(
        owner.url("/events"), json={"events": [event("c", 5)]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert sent.json()["accepted"] == 1
    fresh = await api.get(url, params=query, headers=owner.headers)
    assert [item["total"] for item in fresh.json()["items"]] == [12]
