"""Usage analytics and storage: statuses at the right thresholds, measured sizes, ingestion refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.limits.periods import local_date
from camcount.limits.plans import set_tenant_limit
from camcount.limits.quotas import EVENTS, QuotaMeter
from camcount.limits.storage import StorageExceeded, check_storage_allows_ingest, measure_storage
from camcount.limits.usage import UsageStatus, measure_usage, status_for, usage_report
from camcount.tenancy.models import Tenant
from tests.fixtures.tenants import TenantFactory


@pytest.mark.parametrize(
    ("usage", "limit", "expected"),
    [
        ("0", 10, "LOW"),
        ("4.99", 10, "LOW"),
        ("5", 10, "MEDIUM"),
        ("7.999", 10, "MEDIUM"),
        ("8", 10, "HIGH"),
        ("9.99", 10, "HIGH"),
        ("10", 10, "LIMIT_REACHED"),
        ("11", 10, "LIMIT_REACHED"),
        ("0", 0, "LIMIT_REACHED"),
    ],
)
def test_status_thresholds_are_50_80_and_100_percent(usage: str, limit: int, expected: str) -> None:
    assert status_for(Decimal(usage), limit) is UsageStatus(expected)


async def _add_sites(db: Database, tenant: Tenant, n: int, prefix: str = "site") -> None:
    async with tenant_transaction(db, tenant.location) as conn:
        for i in range(n):
            await conn.execute(
                "INSERT INTO sites (tenant_id, name) VALUES (%s, %s)", (tenant.id, f"{prefix}-{i}")
            )


async def test_a_tenant_sees_live_usage_with_status_and_crossings_are_recorded_once(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    await set_tenant_limit(db, tenant.slug, "sites", 4, actor="test")
    await _add_sites(db, tenant, 3)
    rows = {r.resource: r for r in await usage_report(db, tenant_slug=tenant.slug, live=True)}
    assert (rows["sites"].usage, rows["sites"].percent, rows["sites"].status) == (
        Decimal(3), Decimal("75.00"), UsageStatus.MEDIUM,
    )  # fmt: skip
    assert rows["sites"].is_override
    assert rows["api_calls_per_day"].resets_at is not None
    await _add_sites(db, tenant, 1, prefix="more")
    now = datetime.now(UTC)
    first = await measure_usage(db, now=now)
    second = await measure_usage(db, now=now)
    assert first["crossings"] >= 2  # this tenant's sites crossed 80% and 100%
    assert second["crossings"] == 0
    reached = await usage_report(db, status="limit_reached")
    assert any(r.tenant == tenant.slug and r.resource == "sites" for r in reached)
    assert all(r.status is UsageStatus.LIMIT_REACHED for r in reached)


async def test_storage_is_exact_for_own_schemas_and_estimated_by_rows_for_pooled(
    db: Database, make_tenant: TenantFactory
) -> None:
    own = await make_tenant("schema")
    big = await make_tenant("pooled")
    small = await make_tenant("pooled")
    await _add_sites(db, big, 300)
    await _add_sites(db, small, 3)
    await measure_storage(db, now=datetime.now(UTC))
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT tenant_id, bytes, method FROM control.tenant_storage WHERE tenant_id = ANY(%s)",
            ([own.id, big.id, small.id],),
        )
        measured = {tid: (b, m) for tid, b, m in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (own.schema_name,),
        )
        row = await cur.fetchone()
    assert row is not None
    assert measured[own.id] == (int(row[0]), "exact")
    assert measured[big.id][1] == measured[small.id][1] == "estimate"
    assert measured[big.id][0] > 50 * measured[small.id][0] > 0


async def test_ingestion_is_refused_over_the_storage_limit_plus_grace(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("schema")
    await check_storage_allows_ingest(db, tenant)  # never measured: allowed
    await set_tenant_limit(db, tenant.slug, "storage_gb", 0, actor="test")
    await measure_storage(db, now=datetime.now(UTC))
    with pytest.raises(StorageExceeded, match=r"storage limit reached: storage_gb 0\.\d\d of 0"):
        await check_storage_allows_ingest(db, tenant)
    await set_tenant_limit(db, tenant.slug, "storage_gb", 1, actor="test")
    await measure_storage(db, now=datetime.now(UTC))
    await check_storage_allows_ingest(db, tenant)


async def test_a_quota_shows_the_units_used_this_period_not_those_reserved(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant(timezone="Asia/Kathmandu")
    await set_tenant_limit(db, tenant.slug, EVENTS, 10_000, actor="test")
    now = datetime.now(UTC)
    meter = QuotaMeter(db)
    await meter.consume(tenant, EVENTS, 30, now=now)
    meter.refund(tenant, EVENTS, 5, now=now)  # e.g. duplicates of a retried batch
    await meter.flush()  # the history, as every API process writes it each second
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT current_usage FROM control.tenant_limits WHERE tenant_id = %s AND resource = %s",
            (tenant.id, EVENTS),
        )
        assert (await cur.fetchone()) == (100,)  # a block of 1% is reserved by the process
        last_month = local_date(now, tenant.timezone).replace(day=1) - timedelta(days=1)
        await conn.execute(  # an earlier period does not count
            "INSERT INTO control.tenant_resource_usage (tenant_id, resource, usage_date, usage_value) "
            "VALUES (%s, %s, %s, 400)",
            (tenant.id, EVENTS, last_month),
        )
        await conn.commit()
    [row] = [r for r in await usage_report(db, tenant_slug=tenant.slug, now=now) if r.resource == EVENTS]
    assert (row.usage, row.percent, row.status) == (Decimal(25), Decimal("0.25"), UsageStatus.LOW)
    await meter.stop()
