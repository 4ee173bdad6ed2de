"""A connection reused across tenants carries nothing from the previous transaction."""

from __future__ import annotations

from uuid import uuid4

import pytest
from psycopg import errors, sql

from camcount.config import Settings
from camcount.db.pools import Database
from camcount.db.scope import tenant_fetch, tenant_transaction
from camcount.tenancy.models import Tenant
from tests.fixtures.tenants import TenantFactory

CONTEXT = "SELECT current_setting('camcount.tenant_id', true), current_setting('search_path')"


async def test_the_next_user_of_a_pooled_connection_inherits_no_tenant(
    db: Database, settings: Settings, make_tenant: TenantFactory
) -> None:
    pooled = await make_tenant("pooled")
    schema = await make_tenant("schema")
    # A pool of one connection, so every transaction below runs on the same backend.
    single = Database(settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1}),
                      db.default_server.owner_url)  # fmt: skip
    backends = set()
    try:
        pool = await single.app_pool()
        for tenant in (pooled, schema, pooled):
            async with tenant_transaction(single, tenant.location) as conn:
                backends.add(conn.info.backend_pid)
                await conn.execute(
                    "INSERT INTO sites (tenant_id, name) VALUES (%s, %s)", (tenant.id, uuid4().hex)
                )
                cur = await conn.execute(CONTEXT)
                assert await cur.fetchone() == (str(tenant.id), f'"{tenant.schema_name}"')
            async with pool.connection() as conn:
                backends.add(conn.info.backend_pid)
                cur = await conn.execute(CONTEXT)
                assert (await cur.fetchone() or ("?",))[0] in (None, "")
                for schema_name in ("pooled", schema.schema_name):
                    cur = await conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, "sites"))
                    )
                    assert await cur.fetchone() == (0,)
    finally:
        await single.close()
    assert len(backends) == 1


async def test_a_statement_prepared_on_a_shared_connection_reads_each_schema_tenants_own_rows(
    db: Database, settings: Settings, make_tenant: TenantFactory
) -> None:
    """Schema tenants of one database share its pool; a pipelined statement prepared there is
    parsed again by PostgreSQL whenever the search_path differs, never run against another schema."""
    schemas = [await make_tenant("schema"), await make_tenant("schema")]
    pooled = await make_tenant("pooled")  # the main database's pool serves the pooled schema too
    for tenant in [*schemas, pooled]:
        async with tenant_transaction(db, tenant.location) as conn:
            await conn.execute(
                "INSERT INTO sites (tenant_id, name) VALUES (%s, %s)", (tenant.id, tenant.slug)
            )
    single = Database(settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1}),
                      db.default_server.owner_url)  # fmt: skip
    query = "SELECT tenant_id, name FROM sites WHERE name <> %s"

    async def own_rows(tenant: Tenant) -> None:
        assert await tenant_fetch(single, tenant.location, query, ("",)) == [(tenant.id, tenant.slug)]

    try:
        for _ in range(4):  # past psycopg's threshold (5 uses), alternating on one connection
            for tenant in schemas:
                await own_rows(tenant)
        [(prepared,)] = await tenant_fetch(
            single, schemas[0].location, "SELECT count(*) FROM pg_prepared_statements WHERE statement = %s",
            (query.replace("%s", "$1"),), prepare=False,
        )  # fmt: skip
        for _ in range(3):
            for tenant in [*schemas, pooled]:
                await own_rows(tenant)
    finally:
        await single.close()
    assert prepared == 1


async def test_an_error_and_rollback_leave_no_tenant_behind(db: Database, tenant_a: Tenant) -> None:
    pool = await db.app_pool(tenant_a.server, tenant_a.database_name)
    with pytest.raises(errors.UndefinedTable):
        async with tenant_transaction(db, tenant_a.location) as conn:
            await conn.execute("SELECT * FROM no_such_table")
    async with pool.connection() as conn:
        cur = await conn.execute(CONTEXT)
        setting, search_path = await cur.fetchone() or ("?", "?")
        assert setting in (None, "")
        assert tenant_a.schema_name not in search_path


async def test_an_exception_in_application_code_rolls_back_and_forgets_the_tenant(
    db: Database, tenant_a: Tenant
) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with tenant_transaction(db, tenant_a.location) as conn:
            await conn.execute("INSERT INTO sites (tenant_id, name) VALUES (%s, 'never')", (tenant_a.id,))
            raise Boom
    async with tenant_transaction(db, tenant_a.location) as conn:
        cur = await conn.execute("SELECT count(*) FROM sites WHERE name = 'never'")
        assert await cur.fetchone() == (0,)
    pool = await db.app_pool(tenant_a.server, tenant_a.database_name)
    async with pool.connection() as conn:
        cur = await conn.execute(CONTEXT)
        assert (await cur.fetchone() or ("?",))[0] in (None, "")
