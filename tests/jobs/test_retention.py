"""Retention per tenant in every placement, with an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

from camcount.db.pools import Database
from camcount.jobs.partitions import maintain_target
from camcount.jobs.retention import Retention, apply_retention, retention_by_tenant
from camcount.tenancy import configs
from camcount.tenancy.models import Tenant
from tests.jobs.helpers import add_camera, count_rows, ingest_at, partitions_of

NOW = datetime(2031, 6, 15, 12, tzinfo=UTC)
# With 30 days of retention the boundary is 2031-05-16 12:00: March and April lie wholly before it.
OLD = [datetime(2031, 3, 5, tzinfo=UTC), datetime(2031, 4, 20, tzinfo=UTC), datetime(2031, 5, 10, tzinfo=UTC)]
KEPT = [datetime(2031, 5, 20, tzinfo=UTC), datetime(2031, 6, 10, tzinfo=UTC)]


async def _prepare(db: Database, tenant: Tenant) -> int:
    async with db.owner(tenant.database_name, server=tenant.server) as conn:
        await conn.set_autocommit(True)
        await maintain_target(conn, tenant.schema_name, today=date(2031, 3, 1), ahead=4)
    camera = await add_camera(db, tenant)
    await ingest_at(db, tenant, camera, OLD + KEPT, now=NOW)
    return camera


async def test_a_tenant_override_of_retention_days_wins_over_the_plan(db: Database, tenant_a: Tenant) -> None:
    plan_default = (await retention_by_tenant(db))[tenant_a.id]
    assert plan_default == Retention(365, 1095)  # the standard plan
    await configs.set_config(db, tenant_a.slug, "retention_days", "30", value_type="integer", actor="test")
    await configs.set_config(
        db, tenant_a.slug, "rollup_retention_days", "60", value_type="integer", actor="test"
    )
    assert (await retention_by_tenant(db))[tenant_a.id] == Retention(30, 60)


async def test_old_events_and_rollups_go_and_recent_ones_stay_in_every_placement(
    db: Database, tenant_a: Tenant, tenant_b: Tenant, placement: str
) -> None:
    await _prepare(db, tenant_a)
    await _prepare(db, tenant_b)

    report = await apply_retention(db, tenant_a, Retention(30, 60), now=NOW, batch_size=2)

    assert report.complete
    assert report.deleted["counting_results"] == 3
    assert report.deleted["counting_event_ids"] == 3
    # Rollup boundary 2031-04-16: only the March bucket ended before it.
    assert report.deleted["counting_rollups"] == 1
    assert await count_rows(db, tenant_a, "counting_results") == 2
    assert await count_rows(db, tenant_a, "counting_event_ids") == 2
    assert await count_rows(db, tenant_a, "counting_rollups") == 4
    if placement == "pooled":
        assert report.partitions_dropped == []  # shared partitions are never dropped for one tenant
    else:
        # Every monthly partition wholly before the boundary goes (also the empty ones from provisioning).
        assert {"counting_results_p2031_03", "counting_results_p2031_04"} <= set(report.partitions_dropped)
        assert all(name < "counting_results_p2031_05" for name in report.partitions_dropped)
        remaining = await partitions_of(db, tenant_a)
        assert "counting_results_p2031_03" not in remaining
        assert "counting_results_p2031_05" in remaining
    # The other tenant (same placement, same times, its plan's 365 days) keeps everything.
    assert await count_rows(db, tenant_b, "counting_results") == 5
    assert await count_rows(db, tenant_b, "counting_rollups") == 5

    again = await apply_retention(db, tenant_a, Retention(30, 60), now=NOW)
    assert again.total == 0


async def test_a_run_stops_after_its_batch_budget_and_the_next_run_finishes(
    db: Database, tenant_a: Tenant, placement: str
) -> None:
    camera = await add_camera(db, tenant_a)
    # All in the month that straddles the boundary, so nothing is dropped whole.
    await ingest_at(db, tenant_a, camera, [datetime(2031, 5, d, tzinfo=UTC) for d in range(1, 8)], now=NOW)

    first = await apply_retention(db, tenant_a, Retention(30, 60), now=NOW, batch_size=2, max_batches=2)
    assert not first.complete
    assert first.deleted["counting_results"] == 4
    assert await count_rows(db, tenant_a, "counting_results") == 3

    second = await apply_retention(db, tenant_a, Retention(30, 60), now=NOW, batch_size=2, max_batches=10)
    assert second.complete
    assert second.deleted["counting_results"] == 3
    assert await count_rows(db, tenant_a, "counting_results") == 0
