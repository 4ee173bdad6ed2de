"""Provisioning: every placement, all or nothing, idempotent, safe under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from psycopg import sql

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import Conflict, InvalidInput
from camcount.tenancy.models import Placement, Status
from camcount.tenancy.partitions import (
    PROVISIONED_PARTITIONS_AHEAD,
    add_months,
    ensure_partitions,
    month_start,
    partition_name,
)
from camcount.tenancy.placements import database_name_for, template_database_name
from camcount.tenancy.provisioning import TenantRequest, create_tenant
from tests.fixtures.tenants import unique_slug


async def _exists(db: Database, query: str, *params: object) -> bool:
    async with db.owner() as conn:
        cur = await conn.execute(query.encode(), params)
        return await cur.fetchone() is not None


async def test_a_new_tenant_gets_its_storage_limits_and_default_configuration(
    db: Database, placement: str
) -> None:
    request = TenantRequest.parse(
        unique_slug(), name="Acme", plan="premium", placement=placement, timezone="Asia/Kolkata"
    )
    result = await create_tenant(db, request, actor="test")
    tenant = result.tenant
    assert result.created
    assert (tenant.status, tenant.placement, tenant.plan, tenant.timezone) == (
        Status.ACTIVE, Placement(placement), "premium", "Asia/Kolkata",
    )  # fmt: skip
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT resource, limit_value FROM control.tenant_limits WHERE tenant_id = %s ORDER BY resource",
            (tenant.id,),
        )
        limits = dict(await cur.fetchall())
        cur = await conn.execute(
            "SELECT key, value FROM control.tenant_configs WHERE tenant_id = %s", (tenant.id,)
        )
        configs = dict(await cur.fetchall())
    assert limits["cameras"] == 50 and limits["users"] == 200 and limits["api_calls_per_day"] == 50_000
    assert (
        configs["timezone"] == "Asia/Kolkata"
        and configs["retention_days"] == "730"
        and configs["language"] == "en"
    )
    # Its tables answer in its own placement, with partitions ahead of today.
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute("SELECT count(*) FROM cameras")
        assert await cur.fetchone() == (0,)
        cur = await conn.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'counting_results' AND n.nspname = %s",
            (tenant.schema_name,),
        )
        row = await cur.fetchone()
        assert row is not None and row[0] >= PROVISIONED_PARTITIONS_AHEAD + 2  # this month, next, default
    if tenant.placement is Placement.SCHEMA:
        assert await _exists(db, "SELECT 1 FROM pg_namespace WHERE nspname = %s", tenant.schema_name)
    if tenant.placement is Placement.DATABASE:
        assert tenant.database_name == database_name_for(db.main_dbname, tenant.id)
        assert await _exists(db, "SELECT 1 FROM pg_database WHERE datname = %s", tenant.database_name)


async def test_the_same_create_again_reports_the_existing_tenant(db: Database, placement: str) -> None:
    request = TenantRequest.parse(unique_slug(), name="Same", placement=placement)
    first = await create_tenant(db, request, actor="test")
    again = await create_tenant(db, request, actor="test")
    assert (first.created, again.created) == (True, False)
    assert again.tenant.id == first.tenant.id


async def test_a_conflicting_create_of_an_existing_slug_fails_clearly(db: Database) -> None:
    slug = unique_slug()
    await create_tenant(db, TenantRequest.parse(slug, name="One", plan="basic"), actor="test")
    with pytest.raises(Conflict, match=r"plan is 'basic', not 'premium'"):
        await create_tenant(db, TenantRequest.parse(slug, name="One", plan="premium"), actor="test")


async def test_a_taken_domain_is_refused_and_nothing_is_created(db: Database) -> None:
    domain = f"{unique_slug()}.example.com"
    await create_tenant(db, TenantRequest.parse(unique_slug(), name="A", domain=domain), actor="test")
    slug = unique_slug()
    with pytest.raises(Conflict, match="domain is already in use"):
        await create_tenant(db, TenantRequest.parse(slug, name="B", domain=domain.upper()), actor="test")
    assert not await _exists(db, "SELECT 1 FROM control.tenants WHERE slug = %s", slug)


async def test_an_unknown_plan_is_refused_before_anything_is_written(db: Database) -> None:
    slug = unique_slug()
    with pytest.raises(InvalidInput, match="plan"):
        await create_tenant(db, TenantRequest.parse(slug, name="X", plan="platinum"), actor="test")
    assert not await _exists(db, "SELECT 1 FROM control.tenants WHERE slug = %s", slug)


async def _next_tenant_id(db: Database) -> int:
    async with db.owner() as conn:
        cur = await conn.execute("SELECT last_value + 1 FROM control.tenants_id_seq")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_a_failing_schema_tenant_leaves_no_row_no_schema_no_limits(db: Database) -> None:
    # Sabotage: the schema the next tenant will get already holds a table the DDL wants to create.
    doomed = f"t_{await _next_tenant_id(db)}"
    async with db.owner() as conn, conn.transaction():
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(doomed)))
        await conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(doomed, "sites")))
    slug = unique_slug()
    with pytest.raises(Exception, match="already exists"):
        await create_tenant(db, TenantRequest.parse(slug, name="Doomed", placement="schema"), actor="test")
    assert not await _exists(db, "SELECT 1 FROM control.tenants WHERE slug = %s", slug)
    assert not await _exists(db, "SELECT 1 FROM control.audit_log WHERE tenant_slug = %s", slug)
    assert not await _exists(
        db, "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
        "c.relname = 'cameras'", doomed,
    )  # fmt: skip
    async with db.owner() as conn, conn.transaction():
        await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(doomed)))


async def test_a_database_that_is_not_ours_is_never_adopted_or_dropped(db: Database) -> None:
    # Someone else's database already has the name the next tenant would get.
    stranger = database_name_for(db.main_dbname, await _next_tenant_id(db))
    async with db.login("postgres") as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(stranger)))
    slug = unique_slug()
    with pytest.raises(Conflict, match="will not adopt"):
        await create_tenant(db, TenantRequest.parse(slug, name="Doomed", placement="database"), actor="test")
    assert not await _exists(db, "SELECT 1 FROM control.tenants WHERE slug = %s", slug)
    assert await _exists(db, "SELECT 1 FROM pg_database WHERE datname = %s", stranger)
    async with db.login("postgres") as conn:
        await conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(stranger)))


async def test_a_database_tenant_failing_after_its_database_exists_leaves_no_row_and_no_database(
    db: Database,
) -> None:
    # Sabotage the template: next month's partition name is taken by a plain table, so the step
    # after CREATE DATABASE (partitions ahead) fails inside the new database.
    blocker = partition_name(add_months(month_start(datetime.now(UTC).date()), PROVISIONED_PARTITIONS_AHEAD))
    template = template_database_name(db.main_dbname)
    async with db.owner(template) as conn, conn.transaction():
        await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("tenant", blocker)))
        await conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier("tenant", blocker)))
    doomed = database_name_for(db.main_dbname, await _next_tenant_id(db))
    slug = unique_slug()
    try:
        request = TenantRequest.parse(slug, name="Doomed", placement="database")
        with pytest.raises(Exception, match="already exists"):
            await create_tenant(db, request, actor="test")
    finally:
        async with db.owner(template) as conn, conn.transaction():
            await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("tenant", blocker)))
            await ensure_partitions(conn, "tenant")
    assert not await _exists(db, "SELECT 1 FROM control.tenants WHERE slug = %s", slug)
    assert not await _exists(db, "SELECT 1 FROM pg_database WHERE datname = %s", doomed)


async def test_twenty_parallel_creates_of_distinct_slugs_all_succeed(db: Database) -> None:
    requests = [
        TenantRequest.parse(unique_slug(), name=f"P{i}", placement=("pooled", "schema")[i % 2])
        for i in range(20)
    ]
    results = await asyncio.gather(*(create_tenant(db, r, actor="test") for r in requests))
    assert all(r.created for r in results)
    assert len({r.tenant.id for r in results}) == 20


async def test_twenty_parallel_creates_of_one_slug_make_exactly_one_tenant(
    db: Database, placement: str
) -> None:
    request = TenantRequest.parse(unique_slug(), name="Racy", placement=placement)
    results = await asyncio.gather(*(create_tenant(db, request, actor="test") for _ in range(20)))
    assert sum(r.created for r in results) == 1
    assert len({r.tenant.id for r in results}) == 1
    async with db.owner() as conn:
        cur = await conn.execute("SELECT count(*) FROM control.tenants WHERE slug = %s", (request.slug,))
        assert await cur.fetchone() == (1,)
        cur = await conn.execute(
            "SELECT count(*) FROM control.audit_log WHERE tenant_slug = %s AND action = 'tenant.create'",
            (request.slug,),
        )
        assert await cur.fetchone() == (1,)
