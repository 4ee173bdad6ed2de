"""Entity limits hold exactly under concurrency, in every placement, and say which limit was hit."""

from __future__ import annotations

import asyncio

import pytest

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import LimitReached
from camcount.limits.entities import limit_for, reserve_entity
from camcount.limits.plans import set_tenant_limit
from camcount.tenancy.models import Tenant


async def _create_site(db: Database, tenant: Tenant, name: str) -> int:
    async with tenant_transaction(db, tenant.location) as conn:
        await reserve_entity(conn, tenant.id, "sites", await limit_for(db, tenant.id, "sites"))
        cur = await conn.execute(
            "INSERT INTO sites (tenant_id, name) VALUES (%s, %s) RETURNING id", (tenant.id, name)
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def _create_camera(db: Database, tenant: Tenant, site_id: int, name: str) -> None:
    limit = await limit_for(db, tenant.id, "cameras")
    async with tenant_transaction(db, tenant.location) as conn:
        await reserve_entity(conn, tenant.id, "cameras", limit)
        await conn.execute(
            "INSERT INTO cameras (tenant_id, site_id, name) VALUES (%s, %s, %s)", (tenant.id, site_id, name)
        )


async def _count(db: Database, tenant: Tenant, table: str) -> int:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_64_parallel_creates_against_a_limit_of_10_end_with_exactly_10(
    db: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    assert await limit_for(db, tenant_a.id, "cameras") == 10  # the standard plan
    site_a = await _create_site(db, tenant_a, "Gate")
    site_b = await _create_site(db, tenant_b, "Gate")
    outcomes = await asyncio.gather(
        *(_create_camera(db, tenant_a, site_a, f"cam-{i}") for i in range(64)),
        # The other tenant's creates run at the same time and have their own budget.
        *(_create_camera(db, tenant_b, site_b, f"cam-{i}") for i in range(5)),
        return_exceptions=True,
    )
    refusals = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(r, LimitReached) for r in refusals), refusals
    assert len(refusals) == 54
    assert {str(r) for r in refusals} == {"limit reached: cameras 10 of 10"}
    assert await _count(db, tenant_a, "cameras") == 10
    assert await _count(db, tenant_b, "cameras") == 5


async def test_an_override_raises_the_limit_for_one_tenant_only(
    db: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await set_tenant_limit(db, tenant_a.slug, "sites", 2, actor="test")
    await _create_site(db, tenant_a, "one")
    await _create_site(db, tenant_a, "two")
    with pytest.raises(LimitReached, match="limit reached: sites 2 of 2"):
        await _create_site(db, tenant_a, "three")
    assert await limit_for(db, tenant_b.id, "sites") == 20
