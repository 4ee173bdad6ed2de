from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import Tenant


async def test_a_tenant_in_each_placement_can_store_and_read_a_site(db: Database, tenant_a: Tenant) -> None:
    async with tenant_transaction(db, tenant_a.location) as conn:
        await conn.execute("INSERT INTO sites (tenant_id, name) VALUES (%s, 'HQ')", (tenant_a.id,))
        cur = await conn.execute("SELECT tenant_id, name FROM sites")
        assert await cur.fetchall() == [(tenant_a.id, "HQ")]
