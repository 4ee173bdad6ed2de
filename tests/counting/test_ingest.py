"""Ingestion: idempotent by (camera, event_id), exact under concurrency, bad events never sink good ones."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from camcount.counting.ingest import (
    CountEvent,
    IngestScope,
    Outcome,
    Rejected,
    ingest_events,
    parse_event,
    summarise,
)
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import Tenant
from tests.counting.helpers import event, fetch, ingest, make_camera, make_site
from tests.fixtures.tenants import TenantFactory

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


async def _totals(db: Database, tenant: Tenant) -> tuple[int, int, int, int]:
    """(raw rows, raw sum, id rows, rollup sum) as the tenant sees them."""
    [(rows, raw_sum)] = await fetch(
        db, tenant, "SELECT count(*), coalesce(sum(count_value), 0) FROM counting_results"
    )
    [(ids,)] = await fetch(db, tenant, "SELECT count(*) FROM counting_event_ids")
    [(rolled,)] = await fetch(db, tenant, "SELECT coalesce(sum(total), 0) FROM counting_rollups")
    return int(rows), int(raw_sum), int(ids), int(rolled)


async def test_a_retried_batch_stores_nothing_twice(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant))
    batch = [event(camera, f"e{i}", NOW - timedelta(minutes=i), value=i + 1) for i in range(50)]

    first = await ingest(db, tenant, list(batch), now=NOW)
    second = await ingest(db, tenant, list(batch), now=NOW)

    assert [r.status for r in first] == [Outcome.ACCEPTED] * 50
    assert [r.status for r in second] == [Outcome.DUPLICATE] * 50
    assert {r.reason for r in second} == {"already received"}
    assert await _totals(db, tenant) == (50, sum(range(1, 51)), 50, sum(range(1, 51)))


async def test_a_batch_of_stored_and_new_events_stores_the_new_ones_once(
    db: Database, make_tenant: TenantFactory
) -> None:
    # The all-new statement meets a stored event halfway through the batch: whatever it wrote before
    # must be undone, and the careful statement must store the new events exactly once.
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant))
    events = [event(camera, f"m{i:03}", NOW - timedelta(minutes=i), value=1) for i in range(100)]
    await ingest(db, tenant, events[40:60], now=NOW)

    results = await ingest(db, tenant, list(events), now=NOW)

    expected = [Outcome.DUPLICATE if 40 <= i < 60 else Outcome.ACCEPTED for i in range(100)]
    assert [r.status for r in results] == expected
    assert await _totals(db, tenant) == (100, 100, 100, 100)


async def test_an_event_repeated_within_one_batch_counts_once(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant))
    results = await ingest(db, tenant, [event(camera, "x", NOW, 3), event(camera, "x", NOW, 3)], now=NOW)
    assert [r.status for r in results] == [Outcome.ACCEPTED, Outcome.DUPLICATE]
    assert await _totals(db, tenant) == (1, 3, 1, 3)


async def test_a_mixed_batch_stores_exactly_the_good_events(
    db: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    camera = await make_camera(db, tenant_a, await make_site(db, tenant_a))
    # In the schema and database placements ids are per tenant, so tenant b's first camera has the
    # same id as tenant a's: use b's second camera, whose id tenant a does not have.
    site_b = await make_site(db, tenant_b)
    await make_camera(db, tenant_b, site_b, name="first")
    foreign_camera = await make_camera(db, tenant_b, site_b, name="second")
    at = (NOW - timedelta(hours=1)).isoformat()
    wire = [
        {"event_id": "good-1", "camera_id": camera, "count_type": "in", "count_value": 2, "confidence": 0.9,
         "occurred_at": at},
        {"event_id": "foreign", "camera_id": foreign_camera, "count_type": "in", "count_value": 1,
         "confidence": 0.9, "occurred_at": at},
        {"event_id": "unknown", "camera_id": 10**12, "count_type": "in", "count_value": 1, "occurred_at": at},
        {"event_id": "negative", "camera_id": camera, "count_type": "in", "count_value": -1, "occurred_at": at},
        {"event_id": "huge", "camera_id": camera, "count_type": "in", "count_value": 10**30, "occurred_at": at},
        {"event_id": "conf", "camera_id": camera, "count_type": "in", "count_value": 1, "confidence": 1.5,
         "occurred_at": at},
        {"event_id": "future", "camera_id": camera, "count_type": "in", "count_value": 1,
         "occurred_at": (NOW + timedelta(days=2)).isoformat()},
        {"event_id": "naive", "camera_id": camera, "count_type": "in", "count_value": 1,
         "occurred_at": "2024-06-01T10:00:00"},
        {"event_id": "sql", "camera_id": camera, "count_type": "in'; DROP TABLE sites; --", "count_value": 1,
         "occurred_at": at},
        {"event_id": "", "camera_id": camera, "count_type": "in", "count_value": 1, "occurred_at": at},
        "not an object",
        {"event_id": "good-2", "camera_id": camera, "count_type": "out", "count_value": 5, "occurred_at": at,
         "object_class": "person"},
    ]  # fmt: skip
    parsed = [parse_event(raw) for raw in wire]
    results = await ingest(db, tenant_a, parsed, now=NOW)

    by_id = {r.event_id: r for r in results}
    assert [r.status for r in results].count(Outcome.ACCEPTED) == 2
    assert by_id["good-1"].status == by_id["good-2"].status == Outcome.ACCEPTED
    assert by_id["foreign"].reason == by_id["unknown"].reason == "unknown camera_id"
    assert "count_value" in (by_id["negative"].reason or "")
    assert "count_value" in (by_id["huge"].reason or "")
    assert "confidence" in (by_id["conf"].reason or "")
    assert "future" in (by_id["future"].reason or "")
    assert "offset" in (by_id["naive"].reason or "")
    assert "count_type" in (by_id["sql"].reason or "")
    assert results[10].status == Outcome.REJECTED and results[10].event_id is None
    assert len(results) == len(wire)
    stored = await fetch(db, tenant_a, "SELECT event_id, count_value FROM counting_results ORDER BY event_id")
    assert stored == [("good-1", 2), ("good-2", 5)]
    assert await _totals(db, tenant_b) == (0, 0, 0, 0)
    assert await fetch(db, tenant_b, "SELECT last_delivery_at FROM cameras") == [(None,), (None,)]
    summary = summarise(results)
    assert (summary["accepted"], summary["duplicate"], summary["rejected"]) == (2, 0, 10)


async def test_concurrent_identical_batches_store_each_event_once(db: Database, tenant_a: Tenant) -> None:
    camera = await make_camera(db, tenant_a, await make_site(db, tenant_a))
    batch = [event(camera, f"c{i}", NOW - timedelta(seconds=i), value=1) for i in range(200)]

    async with tenant_transaction(db, tenant_a.location) as first:
        accepted = await ingest_events(first, tenant_a.id, batch, now=NOW)
        # The second, identical batch must wait on the first's uncommitted keys, not double them.
        second = asyncio.create_task(ingest(db, tenant_a, list(batch), now=NOW))
        await asyncio.sleep(0.3)
        assert not second.done()
    duplicates = await second

    assert {r.status for r in accepted} == {Outcome.ACCEPTED}
    assert {r.status for r in duplicates} == {Outcome.DUPLICATE}
    assert await _totals(db, tenant_a) == (200, 200, 200, 200)


async def test_overlapping_batches_in_opposite_orders_neither_deadlock_nor_double(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    site = await make_site(db, tenant)
    cameras = [await make_camera(db, tenant, site, name=f"cam{i}") for i in range(3)]
    events = [event(cameras[i % 3], f"o{i}", NOW - timedelta(minutes=i), value=2) for i in range(300)]
    batches = [events[:200], list(reversed(events[100:])), random.Random(1).sample(events, 300)]

    outcomes = await asyncio.gather(*(ingest(db, tenant, b, now=NOW) for b in batches))

    accepted = sum(r.status == Outcome.ACCEPTED for results in outcomes for r in results)
    assert accepted == 300
    assert await _totals(db, tenant) == (300, 600, 300, 600)


async def test_rollups_equal_the_raw_sums_per_camera_bucket_and_type(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    site = await make_site(db, tenant)
    cameras = [await make_camera(db, tenant, site, name=f"cam{i}") for i in range(2)]
    rng = random.Random(7)
    events = [
        CountEvent(f"r{i}", rng.choice(cameras), rng.choice(["in", "out"]), rng.randint(0, 9),
                   NOW - timedelta(seconds=rng.randint(0, 86_400)), rng.random(), rng.choice(["", "person"]))
        for i in range(1500)
    ]  # fmt: skip
    await ingest(db, tenant, events[:900], now=NOW)
    await ingest(db, tenant, events[600:], now=NOW)  # overlaps: the repeated 300 add nothing

    raw = await fetch(
        db, tenant,
        "SELECT camera_id, count_type, object_class, date_bin('15 minutes', occurred_at, '2000-01-01+00'), "
        "sum(count_value), count(*) FROM counting_results GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )  # fmt: skip
    rolled = await fetch(
        db, tenant,
        "SELECT camera_id, count_type, object_class, bucket_start, total, events FROM counting_rollups "
        "ORDER BY 1, 2, 3, 4",
    )  # fmt: skip
    assert rolled == raw
    assert sum(int(r[4]) for r in rolled) == sum(e.count_value for e in events)


async def test_a_device_key_sends_only_for_cameras_in_its_scope(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    site_1, site_2 = await make_site(db, tenant, name="one"), await make_site(db, tenant, name="two")
    cam_1a = await make_camera(db, tenant, site_1, name="a")
    cam_1b = await make_camera(db, tenant, site_1, name="b")
    cam_2 = await make_camera(db, tenant, site_2)
    batch = [event(cam_1a, "s1", NOW), event(cam_1b, "s2", NOW), event(cam_2, "s3", NOW)]

    by_site = await ingest(db, tenant, batch, now=NOW, scope=IngestScope(site_id=site_1))
    by_camera = await ingest(db, tenant, batch, now=NOW, scope=IngestScope(camera_id=cam_2))

    assert [r.status for r in by_site] == [Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.REJECTED]
    assert by_site[2].reason == "camera_id is outside this device key's scope"
    assert [r.status for r in by_camera] == [Outcome.REJECTED, Outcome.REJECTED, Outcome.ACCEPTED]


async def test_the_camera_records_its_last_delivery(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant))
    await ingest(db, tenant, [event(camera, "t1", NOW)], now=NOW)
    await ingest(db, tenant, [event(camera, "t2", NOW)], now=NOW - timedelta(hours=1))
    await ingest(db, tenant, [event(camera, "t3", NOW)], now=NOW + timedelta(seconds=10))
    assert await fetch(db, tenant, "SELECT last_delivery_at FROM cameras") == [(NOW,)]  # within 30 s
    await ingest(db, tenant, [event(camera, "t4", NOW)], now=NOW + timedelta(minutes=1))
    assert await fetch(db, tenant, "SELECT last_delivery_at FROM cameras") == [(NOW + timedelta(minutes=1),)]


def test_parse_event_accepts_the_edge_workers_shape() -> None:
    parsed = parse_event(
        {"event_id": "e-1", "camera_id": 3, "count_type": "in", "count_value": 4, "confidence": 1,
         "occurred_at": "2024-06-01T10:00:00+05:45", "object_class": None}
    )  # fmt: skip
    assert isinstance(parsed, CountEvent)
    assert parsed.occurred_at == datetime(2024, 6, 1, 4, 15, tzinfo=UTC)
    assert parsed.object_class == ""
    assert parse_event({"event_id": "e", "camera_id": True}) == Rejected(
        "e", None, "camera_id must be a positive integer"
    )
