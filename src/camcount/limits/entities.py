"""Limits on how many things a tenant has (cameras, users, sites, device keys).

Enforced exactly under concurrency without crossing databases: inside the tenant-scoped
transaction that creates the thing, a transaction-scoped advisory lock per (tenant, resource)
serialises creators, the current number is counted in the tenant's own table (RLS confines the
count to the tenant), and the insert happens before the lock is released at COMMIT. So 64
parallel creates against a limit of 10 end with exactly 10, in every placement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection, sql

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import LimitReached
from camcount.tenancy.models import Tenant

# resource -> (table, condition for what counts)
ENTITY_RESOURCES: dict[str, tuple[str, str]] = {
    "cameras": ("cameras", "TRUE"),
    "users": ("users", "is_active"),
    "sites": ("sites", "TRUE"),
    "api_keys": ("api_keys", "revoked_at IS NULL"),
}


async def limit_for(db: Database, tenant_id: int, resource: str) -> int | None:
    """The tenant's effective limit (plan value or override); None = unlimited."""
    async with db.app_control() as conn:
        cur = await conn.execute(
            "SELECT limit_value FROM control.tenant_limits WHERE tenant_id = %s AND resource = %s",
            (tenant_id, resource),
        )
        row = await cur.fetchone()
    return int(row[0]) if row else None


async def reserve_entity(
    conn: AsyncConnection, tenant_id: int, resource: str, limit: int | None, count: int = 1
) -> int:
    """Call in the creating transaction, before the insert. Returns the number in use before it.

    Raises LimitReached (naming the limit and usage) when ``count`` more would exceed ``limit``.
    """
    table, condition = ENTITY_RESOURCES[resource]
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", (f"camcount.entity:{resource}", tenant_id)
    )
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), sql.SQL(condition))
    )
    row = await cur.fetchone()
    used = int(row[0]) if row else 0
    if limit is not None and used + count > limit:
        raise LimitReached(resource, used, limit)
    return used


@asynccontextmanager
async def creating_entity(db: Database, tenant: Tenant, resource: str) -> AsyncIterator[AsyncConnection]:
    """The tenant transaction that creates one ``resource``, with its limit already reserved.

    Insert the new row with the yielded connection; the reservation holds until COMMIT.
    """
    limit = await limit_for(db, tenant.id, resource)
    async with tenant_transaction(db, tenant.location) as conn:
        await reserve_entity(conn, tenant.id, resource, limit)
        yield conn
