"""A migration that changes a column's type does not fail the next pipelined read on a connection
that had prepared a statement over the column (PostgreSQL: "cached plan must not change result
type")."""

from __future__ import annotations

from psycopg import sql

from camcount.config import Settings
from camcount.db.pools import Database
from camcount.db.scope import tenant_fetch
from tests.fixtures.tenants import TenantFactory


async def test_a_prepared_read_survives_a_column_type_change(
    db: Database, settings: Settings, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("schema")  # its own schema: the change below touches no other test
    location = tenant.location
    query = "SELECT name FROM sites WHERE tenant_id = %s"
    single = Database(settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1}),
                      db.default_server.owner_url)  # fmt: skip
    try:
        await tenant_fetch(single, location, "INSERT INTO sites (tenant_id, name) VALUES (%s, 'door')"
                           " RETURNING id", (tenant.id,))  # fmt: skip
        for _ in range(6):  # past psycopg's threshold: prepared on the one connection
            assert await tenant_fetch(single, location, query, (tenant.id,)) == [("door",)]
        async with db.owner(location.database_name, server=location.server) as owner:
            await owner.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN name TYPE varchar(200)").format(
                    sql.Identifier(location.schema_name, "sites")
                )
            )
            await owner.commit()
        assert await tenant_fetch(single, location, query, (tenant.id,)) == [("door",)]
        assert await tenant_fetch(single, location, query, (tenant.id,)) == [("door",)]
    finally:
        await single.close()
