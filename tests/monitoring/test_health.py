"""Each health check raises its reason in a constructed situation and clears when it ends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.jobs.partitions import maintain_target
from camcount.monitoring.health import (
    HealthStatus,
    Issue,
    TenantHealth,
    camera_health,
    check_tenant,
    open_time_between,
    status_of,
)
from camcount.monitoring.ingestion import record_ingestion_outcomes
from camcount.tenancy.models import Tenant
from tests.jobs.helpers import add_camera, ingest_at

NOW = datetime(2031, 3, 10, 9, 0, tzinfo=UTC)  # a Monday
WEEKDAYS_9_TO_17 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def issues_of(health: TenantHealth, check: str) -> list[Issue]:
    return [i for i in health.issues if i.check == check]


async def _set_limit(
    db: Database, tenant: Tenant, resource: str, value: int, usage: int | None = None
) -> None:
    async with db.owner() as conn:
        await conn.execute(
            "UPDATE control.tenant_limits SET limit_value = %s, current_usage = coalesce(%s, current_usage), "
            "period_start = %s WHERE tenant_id = %s AND resource = %s",
            (value, usage, NOW - timedelta(days=2), tenant.id, resource),
        )


def test_the_status_is_the_most_severe_issue_not_a_count_of_issues() -> None:
    warnings = [Issue("camera_silent", HealthStatus.WARNING, "x")] * 5
    assert status_of([]) is HealthStatus.HEALTHY
    assert status_of(warnings) is HealthStatus.WARNING
    assert status_of([Issue("migrations_behind", HealthStatus.CRITICAL, "y")]) is HealthStatus.CRITICAL


async def test_a_reached_limit_is_reported_and_clears_when_the_limit_is_raised(
    db: Database, tenant_a: Tenant
) -> None:
    await add_camera(db, tenant_a)
    await _set_limit(db, tenant_a, "cameras", 1)
    health = await check_tenant(db, tenant_a, now=NOW)
    [issue] = issues_of(health, "limit_reached")
    assert issue.reason == "limit reached: cameras 1 of 1"
    assert issue.severity is HealthStatus.WARNING

    await _set_limit(db, tenant_a, "cameras", 5)
    assert issues_of(await check_tenant(db, tenant_a, now=NOW), "limit_reached") == []


async def test_a_used_up_event_quota_is_critical_until_its_period_ends(
    db: Database, make_tenant: object
) -> None:
    tenant = await make_tenant("pooled")  # type: ignore[operator]
    await _set_limit(db, tenant, "events_per_month", 100, usage=100)
    [issue] = issues_of(await check_tenant(db, tenant, now=NOW), "limit_reached")
    assert issue.severity is HealthStatus.CRITICAL
    assert "events_per_month 100 of 100" in issue.reason
    # 40 days later the monthly period is over: the stale usage no longer counts.
    later = NOW + timedelta(days=40)
    assert issues_of(await check_tenant(db, tenant, now=later), "limit_reached") == []


async def test_no_events_for_seven_days_is_reported_and_clears_with_an_event(
    db: Database, tenant_a: Tenant
) -> None:
    camera = await add_camera(db, tenant_a, created_at=NOW - timedelta(days=30))
    await ingest_at(db, tenant_a, camera, [NOW - timedelta(days=8)], now=NOW - timedelta(days=8))
    health = await check_tenant(db, tenant_a, now=NOW)
    [issue] = issues_of(health, "no_recent_events")
    assert issue.reason == "no events in the last 7 days"
    assert health.status is not HealthStatus.HEALTHY

    await ingest_at(db, tenant_a, camera, [NOW - timedelta(hours=1)], now=NOW - timedelta(hours=1))
    assert issues_of(await check_tenant(db, tenant_a, now=NOW), "no_recent_events") == []


async def test_a_new_tenant_without_events_is_not_reported_as_quiet(db: Database, tenant_a: Tenant) -> None:
    await add_camera(db, tenant_a, created_at=NOW - timedelta(days=2))
    assert issues_of(await check_tenant(db, tenant_a, now=NOW), "no_recent_events") == []


def test_only_business_hours_count_towards_silence() -> None:
    friday_1630 = datetime(2031, 3, 7, 15, 30, tzinfo=UTC)  # 16:30 in Paris (UTC+1)
    monday_0920 = datetime(2031, 3, 10, 8, 20, tzinfo=UTC)
    assert open_time_between(friday_1630, monday_0920, "Europe/Paris", WEEKDAYS_9_TO_17) == timedelta(
        minutes=50
    )
    assert open_time_between(friday_1630, monday_0920, "UTC", {}) == monday_0920 - friday_1630
    # On the night Paris moves its clocks forward (2031-03-30, 02:00 -> 03:00), 01:00-05:00 lasts 3 hours.
    sunday = datetime(2031, 3, 29, 12, 0, tzinfo=UTC)
    night = {"sun": [["01:00", "05:00"]]}
    assert open_time_between(sunday, sunday + timedelta(days=1), "Europe/Paris", night) == timedelta(hours=3)


async def test_a_camera_silent_during_business_hours_is_reported_and_clears_when_it_delivers(
    db: Database, tenant_a: Tenant
) -> None:
    friday_1630 = datetime(2031, 3, 7, 15, 30, tzinfo=UTC)
    camera = await add_camera(
        db, tenant_a, timezone="Europe/Paris", business_hours=WEEKDAYS_9_TO_17,
        config={"expected_interval_minutes": 60}, created_at=friday_1630 - timedelta(days=30), name="door",
    )  # fmt: skip
    await ingest_at(db, tenant_a, camera, [friday_1630], now=friday_1630)

    monday_0920 = datetime(2031, 3, 10, 8, 20, tzinfo=UTC)  # 50 business minutes later: fine
    assert issues_of(await check_tenant(db, tenant_a, now=monday_0920), "camera_silent") == []

    monday_1000 = datetime(2031, 3, 10, 9, 0, tzinfo=UTC)  # 90 business minutes
    [issue] = issues_of(await check_tenant(db, tenant_a, now=monday_1000), "camera_silent")
    assert "'door'" in issue.reason
    assert "90 min of business hours" in issue.reason
    assert issue.details["camera_id"] == camera

    await ingest_at(db, tenant_a, camera, [monday_1000 - timedelta(minutes=5)], now=monday_1000)
    assert issues_of(await check_tenant(db, tenant_a, now=monday_1000), "camera_silent") == []
    async with tenant_transaction(db, tenant_a.location) as conn:
        [seen] = await camera_health(conn, now=monday_1000)
    assert seen.status == "ok"


async def test_a_high_rejection_rate_is_reported_and_clears_when_it_falls(
    db: Database, tenant_a: Tenant
) -> None:
    hour_ago = NOW - timedelta(hours=1)
    await record_ingestion_outcomes(db, tenant_a.id, accepted=10, duplicate=0, rejected=10, now=hour_ago)
    [issue] = issues_of(await check_tenant(db, tenant_a, now=NOW), "ingestion_rejections")
    assert issue.severity is HealthStatus.CRITICAL
    assert issue.reason == "50% of events rejected in the last 24 h (10 of 20)"

    await record_ingestion_outcomes(db, tenant_a.id, accepted=120, duplicate=0, rejected=0, now=hour_ago)
    [issue] = issues_of(await check_tenant(db, tenant_a, now=NOW), "ingestion_rejections")
    assert issue.severity is HealthStatus.WARNING  # 10 of 140 = 7 %

    await record_ingestion_outcomes(db, tenant_a.id, accepted=100, duplicate=0, rejected=0, now=hour_ago)
    assert issues_of(await check_tenant(db, tenant_a, now=NOW), "ingestion_rejections") == []
    # And a day later the window has moved past the rejections anyway.
    await record_ingestion_outcomes(db, tenant_a.id, accepted=0, duplicate=0, rejected=50, now=hour_ago)
    assert (
        issues_of(await check_tenant(db, tenant_a, now=NOW + timedelta(days=1)), "ingestion_rejections") == []
    )


async def test_a_missing_migration_is_critical_until_it_is_applied(db: Database, tenant_a: Tenant) -> None:
    async with db.owner(tenant_a.database_name, server=tenant_a.server) as conn, conn.transaction():
        cur = await conn.execute(
            "DELETE FROM camcount_meta.migrations WHERE schema_name = %s AND version = '0001' "
            "RETURNING schema_name, version, name, checksum, applied_at",
            (tenant_a.schema_name,),
        )
        removed = await cur.fetchone()
    assert removed is not None
    try:
        [issue] = issues_of(await check_tenant(db, tenant_a, now=NOW), "migrations_behind")
        assert issue.severity is HealthStatus.CRITICAL
        assert "0001" in issue.reason
    finally:
        async with db.owner(tenant_a.database_name, server=tenant_a.server) as conn, conn.transaction():
            await conn.execute("INSERT INTO camcount_meta.migrations VALUES (%s, %s, %s, %s, %s)", removed)
    assert issues_of(await check_tenant(db, tenant_a, now=NOW), "migrations_behind") == []


async def test_missing_partitions_ahead_are_reported_and_cleared_by_the_partitions_job(
    db: Database, tenant_a: Tenant
) -> None:
    far = datetime(2046, 2, 10, tzinfo=UTC)
    [issue] = issues_of(await check_tenant(db, tenant_a, now=far), "partitions_missing")
    assert issue.severity is HealthStatus.CRITICAL  # not even this month's partition
    assert issue.details["months"] == ["2046-02", "2046-03", "2046-04", "2046-05"]

    async with db.owner(tenant_a.database_name, server=tenant_a.server) as conn:
        await conn.set_autocommit(True)
        await maintain_target(conn, tenant_a.schema_name, today=date(2046, 2, 1), ahead=2)
    [issue] = issues_of(await check_tenant(db, tenant_a, now=far), "partitions_missing")
    assert issue.severity is HealthStatus.WARNING
    assert issue.details["months"] == ["2046-05"]

    async with db.owner(tenant_a.database_name, server=tenant_a.server) as conn:
        await conn.set_autocommit(True)
        await maintain_target(conn, tenant_a.schema_name, today=date(2046, 2, 1), ahead=3)
    assert issues_of(await check_tenant(db, tenant_a, now=far), "partitions_missing") == []
