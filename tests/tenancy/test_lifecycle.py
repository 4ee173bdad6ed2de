"""Suspension, activation and deletion in every placement; the audit record outlives the tenant."""

from __future__ import annotations

import pytest

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import NotFound
from camcount.tenancy.lifecycle import delete_tenant, get_tenant_by_slug, list_tenants, set_status
from camcount.tenancy.models import Placement, Status, Tenant
from tests.fixtures.seed import seed_tenant_data


async def test_suspend_and_activate_are_audited_and_idempotent(db: Database, tenant_a: Tenant) -> None:
    suspended = await set_status(db, tenant_a.slug, Status.SUSPENDED, actor="ops")
    again = await set_status(db, tenant_a.slug, Status.SUSPENDED, actor="ops")
    active = await set_status(db, tenant_a.slug, Status.ACTIVE, actor="ops")
    assert (suspended.status, again.status, active.status) == (
        Status.SUSPENDED,
        Status.SUSPENDED,
        Status.ACTIVE,
    )
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT action, actor, before->>'status', after->>'status' FROM control.audit_log "
            "WHERE tenant_id = %s AND actor = 'ops' ORDER BY id",
            (tenant_a.id,),
        )
        assert await cur.fetchall() == [
            ("tenant.suspended", "ops", "active", "suspended"),
            ("tenant.active", "ops", "suspended", "active"),
        ]
        suspended_only = await list_tenants(conn, status="suspended")
    assert tenant_a.slug not in {t.slug for t in suspended_only}


async def test_delete_removes_the_data_in_its_placement_and_keeps_the_audit(
    db: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await seed_tenant_data(db, tenant_a)
    await seed_tenant_data(db, tenant_b)
    await delete_tenant(db, tenant_a.slug, actor="ops")

    async with db.owner() as conn:
        assert await get_tenant_by_slug(conn, tenant_a.slug) is None
        cur = await conn.execute(
            "SELECT count(*) FROM control.tenant_limits WHERE tenant_id = %s", (tenant_a.id,)
        )
        assert await cur.fetchone() == (0,)
        cur = await conn.execute(
            "SELECT action FROM control.audit_log WHERE tenant_slug = %s ORDER BY id", (tenant_a.slug,)
        )
        actions = [row[0] for row in await cur.fetchall()]
        assert actions[0] == "tenant.create" and actions[-1] == "tenant.delete"
        if tenant_a.placement is Placement.SCHEMA:
            cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (tenant_a.schema_name,))
            assert await cur.fetchone() is None
        if tenant_a.placement is Placement.DATABASE:
            cur = await conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (tenant_a.database_name,)
            )
            assert await cur.fetchone() is None
    if tenant_a.placement is Placement.POOLED:
        # Its rows are gone from the shared tables (checked with its old context).
        async with tenant_transaction(db, tenant_a.location) as conn:
            for table in ("sites", "cameras", "users", "api_keys", "counting_results", "counting_rollups"):
                cur = await conn.execute(f"SELECT count(*) FROM {table}".encode())
                assert await cur.fetchone() == (0,), table
    # The neighbour is untouched.
    async with tenant_transaction(db, tenant_b.location) as conn:
        cur = await conn.execute("SELECT count(*) FROM counting_results")
        assert await cur.fetchone() == (4,)


async def test_unknown_tenants_are_reported_as_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await set_status(db, "no-such-tenant", Status.SUSPENDED, actor="ops")
    with pytest.raises(NotFound):
        await delete_tenant(db, "no-such-tenant", actor="ops")
