"""The one-round-trip ingestion path (``ingest_batch``): the same answers as event by event.

A well-formed batch is sent as BEGIN, context, the all-new statement and COMMIT in one pipeline.
The statement checks cameras and scope itself and writes nothing unless all pass; a stored event
makes it fail. Every case that leaves the fast path must end exactly as the per-event path does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from camcount.counting.ingest import (
    UNRESTRICTED,
    CountEvent,
    EventColumns,
    EventResult,
    IngestScope,
    Outcome,
    as_row,
    ingest_batch,
)
from camcount.db.pools import Database
from camcount.tenancy.models import Tenant
from tests.counting.helpers import event, fetch, make_camera, make_site
from tests.fixtures.tenants import TenantFactory

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


async def _send(
    db: Database, tenant: Tenant, events: list[CountEvent], scope: IngestScope = UNRESTRICTED
) -> Sequence[EventResult]:
    rows = [as_row(e) for e in events]
    batch = EventColumns.of_rows([r for r in rows if isinstance(r, tuple)])
    return await ingest_batch(db, tenant.location, batch, now=NOW, scope=scope)


async def _stored(db: Database, tenant: Tenant) -> tuple[int, int, int]:
    """(events, ledger rows, rollup total) as the tenant sees them."""
    [(rows,)] = await fetch(db, tenant, "SELECT count(*) FROM counting_results")
    [(ids,)] = await fetch(db, tenant, "SELECT count(*) FROM counting_event_ids")
    [(rolled,)] = await fetch(db, tenant, "SELECT coalesce(sum(total), 0) FROM counting_rollups")
    return int(rows), int(ids), int(rolled)


async def test_new_then_retried_then_extended_batches(db: Database, tenant_a: Tenant) -> None:
    camera = await make_camera(db, tenant_a, await make_site(db, tenant_a))
    events = [event(camera, f"b{i}", NOW - timedelta(minutes=i)) for i in range(30)]

    first = await _send(db, tenant_a, events[:20])
    retry = await _send(db, tenant_a, events[:20])
    extended = await _send(db, tenant_a, events)

    assert {r.status for r in first} == {Outcome.ACCEPTED}
    assert [r.event_id for r in first] == [f"b{i}" for i in range(20)]
    assert {(r.status, r.reason) for r in retry} == {(Outcome.DUPLICATE, "already received")}
    assert [r.status for r in extended] == [Outcome.DUPLICATE] * 20 + [Outcome.ACCEPTED] * 10
    assert await _stored(db, tenant_a) == (30, 30, 30)
    [(delivered,)] = await fetch(db, tenant_a, "SELECT last_delivery_at FROM cameras")
    assert delivered == NOW


async def test_a_camera_outside_the_scope_writes_nothing_then_goes_event_by_event(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    site_1, site_2 = await make_site(db, tenant, name="one"), await make_site(db, tenant, name="two")
    inside = await make_camera(db, tenant, site_1, name="in")
    outside = await make_camera(db, tenant, site_2, name="out")
    batch = [event(inside, "i1", NOW), event(outside, "o1", NOW), event(inside, "i2", NOW)]

    results = await _send(db, tenant, batch, IngestScope(site_id=site_1))

    assert [r.status for r in results] == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.ACCEPTED]
    assert results[1].reason == "camera_id is outside this device key's scope"
    assert await _stored(db, tenant) == (2, 2, 2)


async def test_another_tenants_camera_is_unknown_and_that_tenant_is_untouched(
    db: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    camera = await make_camera(db, tenant_a, await make_site(db, tenant_a))
    site_b = await make_site(db, tenant_b)
    await make_camera(db, tenant_b, site_b, name="first")  # ids are per tenant in some placements
    foreign = await make_camera(db, tenant_b, site_b, name="second")

    results = await _send(db, tenant_a, [event(camera, "mine", NOW), event(foreign, "theirs", NOW)])

    assert [(r.status, r.reason) for r in results] == [
        (Outcome.ACCEPTED, None),
        (Outcome.REJECTED, "unknown camera_id"),
    ]
    assert await _stored(db, tenant_a) == (1, 1, 1)
    assert await _stored(db, tenant_b) == (0, 0, 0)


async def test_times_out_of_range_and_repeated_keys_take_the_per_event_path(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant))
    batch = [
        event(camera, "ok", NOW),
        event(camera, "late", NOW + timedelta(hours=1)),
        event(camera, "ok", NOW),
        event(camera, "old", datetime(1999, 1, 1, tzinfo=UTC)),
    ]

    results = await _send(db, tenant, batch)

    assert [r.status for r in results] == [
        Outcome.ACCEPTED,
        Outcome.REJECTED,
        Outcome.DUPLICATE,
        Outcome.REJECTED,
    ]
    assert await _stored(db, tenant) == (1, 1, 1)


async def test_a_key_twice_in_one_batch_is_stored_once_and_answered_duplicate(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant))
    batch = [event(camera, "a", NOW), event(camera, "b", NOW), event(camera, "a", NOW - timedelta(minutes=1))]

    results = await _send(db, tenant, batch)

    assert [r.status for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.DUPLICATE]
    assert await _stored(db, tenant) == (2, 2, 2)


async def test_concurrent_identical_batches_store_each_event_once(db: Database, tenant_a: Tenant) -> None:
    camera = await make_camera(db, tenant_a, await make_site(db, tenant_a))
    events = [event(camera, f"c{i}", NOW - timedelta(seconds=i)) for i in range(300)]

    outcomes = await asyncio.gather(*(_send(db, tenant_a, list(events)) for _ in range(4)))

    accepted = [sum(r.status == Outcome.ACCEPTED for r in results) for results in outcomes]
    assert sum(accepted) == 300
    assert all(r.status in (Outcome.ACCEPTED, Outcome.DUPLICATE) for results in outcomes for r in results)
    assert await _stored(db, tenant_a) == (300, 300, 300)


async def test_the_fast_path_stays_usable_after_many_failed_attempts(db: Database, tenant_a: Tenant) -> None:
    # Each connection sees the all-new statement fail (a retry) and succeed many times, past
    # psycopg's prepare threshold: a statement counted as prepared but not on the server would
    # surface as "prepared statement does not exist".
    camera = await make_camera(db, tenant_a, await make_site(db, tenant_a))
    for round_ in range(25):
        events = [event(camera, f"r{round_}-{i}", NOW - timedelta(seconds=i)) for i in range(5)]
        assert {r.status for r in await _send(db, tenant_a, events)} == {Outcome.ACCEPTED}
        assert {r.status for r in await _send(db, tenant_a, events)} == {Outcome.DUPLICATE}
    assert await _stored(db, tenant_a) == (125, 125, 125)
