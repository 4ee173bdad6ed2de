"""POST and GET /t/{slug}/events over HTTP, in every placement, with another tenant's credentials too."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from camcount.db.pools import Database
from tests.counting.helpers import fetch, make_camera, make_device_key, make_site
from tests.fixtures.api import ApiTenant, ApiTenantFactory

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def wire(
    camera_id: int, event_id: str, value: int = 1, *, count_type: str = "in", at: datetime = AT
) -> dict[str, Any]:
    return {"event_id": event_id, "camera_id": camera_id, "count_type": count_type, "count_value": value,
            "confidence": 0.8, "occurred_at": at.isoformat(), "object_class": "person"}  # fmt: skip


async def _setup(
    db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> tuple[ApiTenant, int, int]:
    owner = await make_api_tenant(placement)
    site = await make_site(db, owner.tenant)
    first = await make_camera(db, owner.tenant, site, name="first")
    second = await make_camera(db, owner.tenant, site, name="second")
    return owner, first, second


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_device_batch_is_acknowledged_per_event_and_a_retry_stores_nothing_twice(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    owner, camera, _ = await _setup(db, make_api_tenant, placement)
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    batch = {"events": [wire(camera, f"e{i}", i) for i in range(20)]}

    first = await api.post(owner.url("/events"), json=batch, headers=bearer(key))
    retry = await api.post(owner.url("/events"), json=batch, headers=bearer(key))

    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"results", "accepted", "duplicate", "rejected"}
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (20, 0, 0)
    assert body["results"][3] == {"event_id": "e3", "camera_id": camera, "status": "accepted", "reason": None}
    assert retry.json()["duplicate"] == 20
    assert await fetch(db, owner.tenant, "SELECT count(*), sum(count_value) FROM counting_results") == [
        (20, 190)
    ]


async def test_a_mixed_batch_over_http_stores_exactly_the_good_events(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    owner, camera, other = await _setup(db, make_api_tenant, placement)
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    events = [
        wire(camera, "good-1", 3),
        wire(other, "not-my-camera"),
        wire(camera, "bad-value", -5),
        {**wire(camera, "bad-type"), "count_type": "IN"},
        {**wire(camera, "future"), "occurred_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat()},
        {**wire(camera, "bad-time"), "occurred_at": "yesterday"},
        [1, 2, 3],
        wire(camera, "good-2", 4, count_type="out"),
    ]
    response = await api.post(owner.url("/events"), json={"events": events}, headers=bearer(key))

    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted"] + ["rejected"] * 6 + ["accepted"]
    assert body["results"][1]["reason"] == "camera_id is outside this device key's scope"
    assert all(r["reason"] for r in body["results"][1:7])
    stored = await fetch(db, owner.tenant, "SELECT event_id, count_value FROM counting_results ORDER BY 1")
    assert stored == [("good-1", 3), ("good-2", 4)]


async def test_prefer_return_minimal_lists_only_the_events_not_accepted(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    owner, camera, _ = await _setup(db, make_api_tenant, placement)
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    minimal = {**bearer(key), "Prefer": "respond-async, RETURN=minimal"}
    batch = {"events": [wire(camera, f"m{i}", 1) for i in range(10)]}

    first = await api.post(owner.url("/events"), json=batch, headers=minimal)
    mixed = {"events": [wire(camera, "m3"), wire(camera, "m-new"), wire(camera, "m-bad", -1)]}
    second = await api.post(owner.url("/events"), json=mixed, headers=minimal)
    full = await api.post(owner.url("/events"), json=mixed, headers=bearer(key))

    assert first.status_code == 200, first.text
    assert first.headers["Preference-Applied"] == "return=minimal"
    assert first.json() == {"results": [], "accepted": 10, "duplicate": 0, "rejected": 0}
    body = second.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (1, 1, 1)
    assert [(r["event_id"], r["status"]) for r in body["results"]] == [
        ("m3", "duplicate"),
        ("m-bad", "rejected"),
    ]
    assert "Preference-Applied" not in full.headers
    assert [r["status"] for r in full.json()["results"]] == ["duplicate", "duplicate", "rejected"]
    assert await fetch(db, owner.tenant, "SELECT count(*) FROM counting_results") == [(11,)]


async def test_concurrent_identical_requests_store_each_event_once(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    owner, camera, other = await _setup(db, make_api_tenant, placement)
    batch = {"events": [wire(camera if i % 2 else other, f"c{i}", 2) for i in range(500)]}

    answers = await asyncio.gather(
        *(api.post(owner.url("/events"), json=batch, headers=owner.headers) for _ in range(4))
    )

    assert [a.status_code for a in answers] == [200] * 4
    assert sum(a.json()["accepted"] for a in answers) == 500
    assert sum(a.json()["duplicate"] for a in answers) == 1500
    assert await fetch(db, owner.tenant, "SELECT count(*) FROM counting_results") == [(500,)]
    assert await fetch(db, owner.tenant, "SELECT sum(total) FROM counting_rollups") == [(1000,)]


async def test_another_tenants_credentials_and_cameras_get_nothing(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    alice, camera_a, _ = await _setup(db, make_api_tenant, placement)
    bob, _, camera_b2 = await _setup(db, make_api_tenant, placement)
    # Alice's first camera shares its id with Bob's first in per-tenant placements; Bob's second
    # camera id exists in both too, so make Bob a third that Alice does not have.
    camera_b3 = await make_camera(db, bob.tenant, await make_site(db, bob.tenant, name="b2"), name="third")
    alice_key = await make_device_key(db, alice.tenant)
    batch = {"events": [wire(camera_a, "x")]}

    for headers in (alice.headers, bearer(alice_key)):
        post = await api.post(bob.url("/events"), json=batch, headers=headers)
        listing = await api.get(bob.url("/events"), headers=headers)
        assert post.status_code == 404, post.text
        assert listing.status_code in (403, 404), listing.text
        assert bob.slug not in post.text
    foreign = await api.post(
        alice.url("/events"), json={"events": [wire(camera_b3, "y")]}, headers=bearer(alice_key)
    )
    assert foreign.json()["results"][0] == {"event_id": "y", "camera_id": camera_b3, "status": "rejected",
                                            "reason": "unknown camera_id"}  # fmt: skip
    by_camera = await api.get(alice.url("/events"), params={"camera_id": camera_b3}, headers=alice.headers)
    assert by_camera.status_code == 404
    assert await fetch(db, bob.tenant, "SELECT count(*) FROM counting_results") == [(0,)]
    assert camera_b2 > 0


async def test_too_large_batches_and_bodies_get_413_and_bad_bodies_422(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner, camera, _ = await _setup(db, make_api_tenant, "pooled")
    small = wire(camera, "e")
    too_many = {"events": [{"event_id": str(i)} for i in range(5001)]}
    too_big = {"events": [{**small, "event_id": "x" * 100}] * 6000}

    assert (await api.post(owner.url("/events"), json=too_many, headers=owner.headers)).status_code == 413
    big = await api.post(
        owner.url("/events"),
        content=json.dumps(too_big),
        headers={**owner.headers, "content-type": "application/json"},
    )
    assert big.status_code == 413
    assert big.headers["content-type"].startswith("application/problem+json")
    for body in (b"{not json", b"[]", b'{"events": 3}', "\u00ff".encode("latin-1")):
        bad = await api.post(owner.url("/events"), content=body, headers=owner.headers)
        assert bad.status_code == 422, (body, bad.text)
    assert (await api.post(owner.url("/events"), json={"events": [small]})).status_code == 401
    assert await fetch(db, owner.tenant, "SELECT count(*) FROM counting_results") == [(0,)]


async def test_a_device_key_may_not_list_events(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner, camera, _ = await _setup(db, make_api_tenant, "pooled")
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    assert (await api.get(owner.url("/events"), headers=bearer(key))).status_code == 403


async def test_event_listing_pages_through_everything_with_cursors(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    owner, camera, other = await _setup(db, make_api_tenant, placement)
    events = [wire(camera if i % 3 else other, f"p{i}", at=AT - timedelta(minutes=i // 4)) for i in range(57)]
    await api.post(owner.url("/events"), json={"events": events}, headers=owner.headers)

    ids: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = await api.get(owner.url("/events"), params=params, headers=owner.headers)
        assert page.status_code == 200, page.text
        ids.extend(item["id"] for item in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    only_other = await api.get(
        owner.url("/events"), params={"camera_id": other, "limit": 100}, headers=owner.headers
    )

    assert sorted(ids) == sorted(f"{e['camera_id']}:{e['event_id']}" for e in events)
    assert len(ids) == len(set(ids)) == 57
    assert {i["camera_id"] for i in only_other.json()["items"]} == {other}
    for params in ({"cursor": "garbage"}, {"limit": 0}, {"from": "2024-01-01T00:00:00"}, {"camera_id": "x"}):
        bad = await api.get(owner.url("/events"), params=params, headers=owner.headers)
        assert bad.status_code == 422, (params, bad.text)


async def test_events_older_than_the_tenants_retention_are_refused(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    # Their idempotency keys would already be gone, so a retry could count them twice.
    owner, camera, _ = await _setup(db, make_api_tenant, "pooled")  # standard plan: 365 days
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    now = datetime.now(UTC).replace(microsecond=0)
    batch = {"events": [wire(camera, "old", at=now - timedelta(days=400)),
                        wire(camera, "recent", at=now - timedelta(days=300))]}  # fmt: skip
    answer = await api.post(owner.url("/events"), json=batch, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    statuses = {r["event_id"]: (r["status"], r["reason"]) for r in answer.json()["results"]}
    assert statuses["old"] == ("rejected", "occurred_at is older than this tenant's retention period")
    assert statuses["recent"] == ("accepted", None)


async def test_a_retention_change_applies_to_the_next_batch(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, operator_headers: dict[str, str]
) -> None:
    # The retention read on every batch is cached with the tenant's entries; the operator's change
    # drops them, so the next batch sees the new value at once (not after the cache's 30 s).
    owner, camera, _ = await _setup(db, make_api_tenant, "pooled")  # standard plan: 365 days
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    now = datetime.now(UTC).replace(microsecond=0)
    first = await api.post(owner.url("/events"), json={"events": [wire(camera, "a", at=now - timedelta(days=300))]},
                           headers=bearer(key))  # fmt: skip
    assert first.json()["accepted"] == 1
    changed = await api.put(f"/admin/tenants/{owner.slug}/config/retention_days",
                            json={"value": "200", "type": "integer"}, headers=operator_headers)  # fmt: skip
    assert changed.status_code == 200, changed.text
    second = await api.post(owner.url("/events"), json={"events": [wire(camera, "b", at=now - timedelta(days=300))]},
                            headers=bearer(key))  # fmt: skip
    assert second.json()["results"][0]["reason"] == "occurred_at is older than this tenant's retention period"
