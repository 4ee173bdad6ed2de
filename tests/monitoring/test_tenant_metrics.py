"""Tenant metrics are each tenant's own, in every placement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from camcount.db.pools import Database
from camcount.monitoring.ingestion import record_ingestion_outcomes
from camcount.monitoring.tenant_metrics import tenant_metrics
from camcount.tenancy.models import Tenant
from tests.jobs.helpers import add_camera, count_rows, ingest_at

NOW = datetime(2032, 8, 1, 12, tzinfo=UTC)


async def test_counts_events_confidence_and_ingestion_are_per_tenant(
    db: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    cam_a1 = await add_camera(db, tenant_a)
    await add_camera(db, tenant_a)
    cam_b = await add_camera(db, tenant_b)
    await ingest_at(db, tenant_a, cam_a1, [NOW - timedelta(minutes=30)], now=NOW, confidence=0.6)
    await ingest_at(db, tenant_a, cam_a1, [NOW - timedelta(minutes=20)], now=NOW, confidence=1.0)
    await ingest_at(db, tenant_a, cam_a1, [NOW - timedelta(hours=5)], now=NOW, confidence=0.5)
    await ingest_at(db, tenant_a, cam_a1, [NOW - timedelta(days=3)], now=NOW, confidence=0.1)
    await ingest_at(db, tenant_b, cam_b, [NOW - timedelta(days=2)], now=NOW, confidence=0.9)
    await record_ingestion_outcomes(
        db, tenant_a.id, accepted=4, duplicate=1, rejected=5, now=NOW - timedelta(hours=2)
    )
    await record_ingestion_outcomes(
        db, tenant_b.id, accepted=1, duplicate=0, rejected=0, now=NOW - timedelta(hours=2)
    )

    a, b = await tenant_metrics(db, [tenant_a, tenant_b], now=NOW)

    assert (a.cameras, a.sites, a.users) == (2, 2, await count_rows(db, tenant_a, "users"))
    assert (a.events_last_hour, a.events_last_day) == (2, 3)
    assert a.average_confidence == pytest.approx(0.7, abs=1e-6)
    assert a.last_event_at == NOW - timedelta(minutes=20)
    assert (a.ingestion_accepted, a.ingestion_duplicate, a.ingestion_rejected) == (4, 1, 5)
    assert a.ingestion_error_rate == pytest.approx(0.5)
    assert (b.cameras, b.sites) == (1, 1)
    assert (b.events_last_hour, b.events_last_day, b.average_confidence) == (0, 0, None)
    assert b.last_event_at == NOW - timedelta(days=2)
    assert b.ingestion_error_rate == 0.0
    assert a.as_dict()["ingestion_last_day"]["error_rate"] == 0.5


async def test_storage_is_exact_for_own_schemas_and_an_estimate_within_the_shared_tables(
    db: Database, tenant_a: Tenant, tenant_b: Tenant, placement: str
) -> None:
    camera = await add_camera(db, tenant_a)
    await ingest_at(db, tenant_a, camera, [NOW - timedelta(minutes=m) for m in range(1, 400)], now=NOW)
    a, b = await tenant_metrics(db, [tenant_a, tenant_b], now=NOW)
    async with db.owner(tenant_a.database_name, server=tenant_a.server) as conn:
        cur = await conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(format('%%I.%%I', schemaname, tablename))), 0) "
            "FROM pg_tables WHERE schemaname = %s",
            (tenant_a.schema_name,),
        )
        row = await cur.fetchone()
        assert row is not None
        schema_total = int(row[0])
    if placement == "pooled":
        assert a.storage_method == "estimate"
        assert 0 < a.storage_bytes <= schema_total  # a share of the shared tables, never all of them
        assert b.storage_bytes < a.storage_bytes
    else:
        assert a.storage_method == b.storage_method == "exact"
        assert a.storage_bytes == schema_total
        assert b.storage_bytes < a.storage_bytes
