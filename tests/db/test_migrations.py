"""The migration runner over many targets: failures stay local, re-runs finish, status tells."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from camcount.config import Settings
from camcount.db.migrations import TENANT_TREE, load_migrations
from camcount.db.pools import Database
from camcount.runtime import open_database
from camcount.tenancy.bootstrap import initialize, migrate_all, plan_migrations
from camcount.tenancy.models import Tenant
from camcount.tenancy.provisioning import TenantRequest, create_tenant
from tests.fixtures.database import drop_databases
from tests.fixtures.tenants import unique_slug

ADD_NOTE = "ALTER TABLE sites ADD COLUMN note text;\n"


@pytest.fixture
async def fresh_db(settings: Settings, main_dbname: str) -> AsyncIterator[Database]:
    """A database of its own: these tests add migrations that others must not see."""
    assert settings.database_url is not None
    name = f"{main_dbname}_mig"
    url = make_conninfo(settings.database_url.get_secret_value(), dbname=name)
    drop_databases(name)
    own = settings.model_copy(update={"database_url": SecretStr(url)})
    async with open_database(own, load=False) as database:
        await initialize(database)
        yield database
    drop_databases(name)


async def _tenant(db: Database, placement: str) -> Tenant:
    request = TenantRequest.parse(unique_slug(), name="M", placement=placement)
    return (await create_tenant(db, request, actor="test")).tenant


async def _has_note(db: Database, tenant: Tenant) -> bool:
    async with db.owner(tenant.database_name, server=tenant.server) as conn:
        cur = await conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'sites' "
            "AND column_name = 'note'",
            (tenant.schema_name,),
        )
        return await cur.fetchone() is not None


async def test_a_failing_tenant_is_reported_the_others_migrate_and_a_rerun_finishes(
    fresh_db: Database, tmp_path: Path
) -> None:
    db = fresh_db
    (tmp_path / "0099_site_notes.sql").write_text(ADD_NOTE)
    healthy = [await _tenant(db, "schema") for _ in range(3)] + [await _tenant(db, "database")]
    broken = await _tenant(db, "schema")
    # Sabotage one tenant: the column the migration adds is already there (with another type).
    async with db.owner() as conn:
        await conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN note integer").format(
                sql.Identifier(broken.schema_name, "sites")
            )
        )

    plan = await plan_migrations(db, extra_tenant_dirs=[tmp_path])
    assert {t.schema for t, missing in plan.behind if missing == ["0099"]} >= {t.schema_name for t in healthy}

    results = await migrate_all(db, extra_tenant_dirs=[tmp_path], workers=3)
    failed = [r for r in results if r.error]
    assert [r.target.schema for r in failed] == [broken.schema_name]
    assert "already exists" in (failed[0].error or "")
    for tenant in healthy:
        assert await _has_note(db, tenant)
    # The failed tenant is exactly where it was: old versions in its ledger, its own column untouched.
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT array_agg(version ORDER BY version) FROM camcount_meta.migrations WHERE schema_name = %s",
            (broken.schema_name,),
        )
        packaged = [m.version for m in load_migrations(TENANT_TREE)]
        assert await cur.fetchone() == (packaged,)
    plan = await plan_migrations(db, extra_tenant_dirs=[tmp_path])
    assert [(t.schema, missing) for t, missing in plan.behind] == [(broken.schema_name, ["0099"])]

    async with db.owner() as conn:
        await conn.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN note").format(sql.Identifier(broken.schema_name, "sites"))
        )
    rerun = await migrate_all(db, extra_tenant_dirs=[tmp_path])
    assert [(r.target.schema, r.applied, r.error) for r in rerun] == [(broken.schema_name, ["0099"], None)]
    assert (await plan_migrations(db, extra_tenant_dirs=[tmp_path])).behind == []
    assert await migrate_all(db, extra_tenant_dirs=[tmp_path]) == []  # a no-op run does nothing


async def test_new_tenants_get_tables_the_app_role_may_use_but_not_their_partitions(
    fresh_db: Database,
) -> None:
    tenant = await _tenant(fresh_db, "schema")
    async with fresh_db.owner() as conn:
        cur = await conn.execute(
            "SELECT c.relname, has_table_privilege(%s, c.oid, 'SELECT') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1",
            (fresh_db.settings.app_role, tenant.schema_name),
        )
        privileges = dict(await cur.fetchall())
    assert privileges["sites"] and privileges["counting_results"]
    assert not privileges["counting_results_default"]
    assert not any(allowed for name, allowed in privileges.items() if name.startswith("counting_results_p"))
