"""Partitions ahead and rows rescued from the default partition, in every placement."""

from __future__ import annotations

from datetime import UTC, date, datetime

from camcount.db.pools import Database
from camcount.jobs.partitions import maintain_all, maintain_target, maintenance_targets
from camcount.tenancy.models import Tenant
from tests.jobs.helpers import add_camera, count_rows, default_rows, ingest_at, partitions_of

# Months no other test uses, one per placement (the pooled schema is shared within a test process).
FAR_MONTH = {"pooled": 2003, "schema": 2004, "database": 2005}


async def _maintain(db: Database, tenant: Tenant, today: date) -> tuple[list[str], dict[str, int]]:
    async with db.owner(tenant.database_name, server=tenant.server) as conn:
        await conn.set_autocommit(True)
        report = await maintain_target(conn, tenant.schema_name, today=today, ahead=3)
    return report.created, report.moved


async def test_partitions_exist_three_months_ahead_of_the_injected_date(
    db: Database, tenant_a: Tenant
) -> None:
    today = date(2040, 11, 20)
    created, _ = await _maintain(db, tenant_a, today)
    wanted = {f"counting_results_p{m}" for m in ("2040_11", "2040_12", "2041_01", "2041_02")}
    assert wanted <= set(created)
    assert wanted <= await partitions_of(db, tenant_a)
    created_again, moved = await _maintain(db, tenant_a, today)
    assert (created_again, moved) == ([], {})


async def test_rows_in_the_default_partition_are_moved_into_a_new_monthly_partition(
    db: Database, tenant_a: Tenant, tenant_b: Tenant, placement: str
) -> None:
    year = FAR_MONTH[placement]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    camera_a = await add_camera(db, tenant_a)
    camera_b = await add_camera(db, tenant_b)
    times = [datetime(year, 3, 2, tzinfo=UTC), datetime(year, 3, 31, 23, 59, tzinfo=UTC),
             datetime(year, 7, 1, tzinfo=UTC)]  # fmt: skip
    await ingest_at(db, tenant_a, camera_a, times, now=now)
    await ingest_at(db, tenant_b, camera_b, times[:1], now=now)
    assert await default_rows(db, tenant_a) >= 3

    _, moved = await _maintain(db, tenant_a, date(2026, 1, 1))

    expected = {f"counting_results_p{year}_03", f"counting_results_p{year}_07"}
    if placement == "pooled":
        # The shared default also holds other tests' old rows, which move too; b's row moves
        # along with a's into the same months.
        assert expected <= set(moved)
        assert sum(moved[name] for name in expected) == 4
    else:
        assert set(moved) == expected
        assert sum(moved.values()) == 3
    assert await default_rows(db, tenant_a) == 0
    assert expected <= await partitions_of(db, tenant_a)
    # Every row is still there, visible to its own tenant only.
    assert await count_rows(db, tenant_a, "counting_results") == 3
    assert await count_rows(db, tenant_b, "counting_results") == 1


async def test_a_new_partition_keeps_the_parent_constraints_and_refuses_foreign_months(
    db: Database, make_tenant: object
) -> None:
    from psycopg import errors, sql

    from tests.fixtures.tenants import TenantFactory

    assert callable(make_tenant)
    factory: TenantFactory = make_tenant  # type: ignore[assignment]
    tenant = await factory("schema")
    camera = await add_camera(db, tenant)
    await ingest_at(
        db, tenant, camera, [datetime(2006, 5, 5, tzinfo=UTC)], now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    await _maintain(db, tenant, date(2026, 1, 1))
    async with db.owner() as conn:
        await conn.set_autocommit(True)
        table = sql.Identifier(tenant.schema_name, "counting_results_p2006_05")
        for bad in ("2006-06-01 00:00:00+00", "2006-04-30 23:59:59+00"):
            try:
                async with conn.transaction():
                    await conn.execute(
                        sql.SQL("INSERT INTO {} (tenant_id, camera_id, event_id, count_type, count_value, "
                                "occurred_at) VALUES (%s, %s, 'x', 'in', 1, %s)").format(table),
                        (tenant.id, camera, bad),
                    )  # fmt: skip
            except errors.CheckViolation:
                continue
            raise AssertionError(f"{bad} was accepted by the May partition")


async def test_the_job_covers_every_target_including_templates(db: Database, make_tenant: object) -> None:
    from tests.fixtures.tenants import TenantFactory

    factory: TenantFactory = make_tenant  # type: ignore[assignment]
    schema_tenant = await factory("schema")
    database_tenant = await factory("database")
    labels = {t.label for t in await maintenance_targets(db)}
    assert "pooled tenants" in labels
    assert any(label.startswith("template on") for label in labels)
    assert any(schema_tenant.slug in label for label in labels)
    assert any(database_tenant.slug in label for label in labels)
    reports = await maintain_all(db, today=date(2041, 6, 1))
    assert all(r.error is None for r in reports), [r for r in reports if r.error]
    for tenant in (schema_tenant, database_tenant):
        assert {"counting_results_p2041_06", "counting_results_p2041_09"} <= await partitions_of(db, tenant)
