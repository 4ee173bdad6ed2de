"""Ingestion counters: tallied in memory, written by a background task, kept when a write fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from camcount.db.pools import Database
from camcount.monitoring import ingestion
from camcount.monitoring.ingestion import IngestionCounters
from camcount.tenancy.lifecycle import delete_tenant
from tests.fixtures.tenants import TenantFactory

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


async def _stored(db: Database, tenant_id: int) -> list[tuple[datetime, int, int, int]]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT hour, accepted, duplicate, rejected FROM control.ingestion_counters WHERE tenant_id = %s "
            "ORDER BY hour",
            (tenant_id,),
        )
        return [(h, int(a), int(d), int(r)) for h, a, d, r in await cur.fetchall()]


async def test_batches_add_up_per_tenant_and_hour_and_reach_the_database_at_the_flush(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    counters = IngestionCounters(db)
    counters.record(tenant.id, (5, 1, 0), now=HOUR + timedelta(minutes=1))
    counters.record(tenant.id, (3, 0, 2), now=HOUR + timedelta(minutes=59))
    counters.record(tenant.id, (1, 0, 0), now=HOUR + timedelta(hours=1))
    counters.record(tenant.id, (0, 0, 0), now=HOUR)  # an empty batch adds no row
    assert await _stored(db, tenant.id) == []  # nothing written by a batch itself
    assert await counters.flush() == 2
    assert await _stored(db, tenant.id) == [(HOUR, 8, 1, 2), (HOUR + timedelta(hours=1), 1, 0, 0)]
    counters.record(tenant.id, (2, 2, 2), now=HOUR)
    await counters.flush()
    assert (await _stored(db, tenant.id))[0] == (HOUR, 10, 3, 4)


async def test_stop_writes_what_is_left(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    counters = IngestionCounters(db, flush_seconds=3600)
    counters.start()
    counters.record(tenant.id, (7, 0, 0), now=HOUR)
    await counters.stop()  # a clean shutdown loses no counts
    assert await _stored(db, tenant.id) == [(HOUR, 7, 0, 0)]


async def test_a_tenant_deleted_meanwhile_does_not_block_the_others(
    db: Database, make_tenant: TenantFactory
) -> None:
    kept, deleted = await make_tenant(), await make_tenant()
    counters = IngestionCounters(db)
    counters.record(deleted.id, (4, 0, 0), now=HOUR)
    counters.record(kept.id, (6, 0, 0), now=HOUR)
    await delete_tenant(db, deleted.slug, actor="test")
    await counters.flush()  # the deleted tenant's row would break the foreign key for all
    assert await _stored(db, kept.id) == [(HOUR, 6, 0, 0)]
    assert await _stored(db, deleted.id) == []


async def test_a_failed_write_is_kept_for_the_next_flush(
    db: Database,
    make_tenant: TenantFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await make_tenant()
    counters = IngestionCounters(db)
    counters.record(tenant.id, (3, 0, 1), now=HOUR)
    write = ingestion._write

    async def unreachable(*args: object) -> None:
        raise OSError("control plane unreachable")

    monkeypatch.setattr(ingestion, "_write", unreachable)
    assert await counters.flush() == 0  # logged, not raised: the periodic task goes on
    assert "could not write ingestion counters" in caplog.text
    counters.record(tenant.id, (1, 0, 0), now=HOUR)
    monkeypatch.setattr(ingestion, "_write", write)
    assert await counters.flush() == 1
    assert await _stored(db, tenant.id) == [(HOUR, 4, 0, 1)]
