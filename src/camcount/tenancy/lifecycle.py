"""Reading tenants and changing their status; deleting a tenant's data in any placement."""

from __future__ import annotations

from psycopg import AsyncConnection, sql

from camcount.db.pools import Database
from camcount.db.scope import owner_tenant_transaction
from camcount.errors import InvalidInput, NotFound
from camcount.tenancy import audit
from camcount.tenancy.bootstrap import drop_database
from camcount.tenancy.models import TENANT_COLUMNS, Placement, Status, Tenant, tenant_from_row
from camcount.tenancy.validation import validate_choice

# Children before parents; cameras cascade to events, event ids and rollups.
_POOLED_TABLES_IN_DELETE_ORDER = (
    "counting_rollups", "counting_event_ids", "counting_results", "api_keys", "cameras", "users", "sites",
)  # fmt: skip


async def lock_tenant_slug(conn: AsyncConnection, slug: str) -> None:
    """Serialise changes to one slug for the rest of the transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('camcount.tenant'), hashtext(%s))", (slug,))


SELECT_BY_SLUG = f"SELECT {TENANT_COLUMNS} FROM control.tenants WHERE slug = %s".encode()  # noqa: S608


async def get_tenant_by_slug(
    conn: AsyncConnection, slug: str, *, include_provisioning: bool = False
) -> Tenant | None:
    query = SELECT_BY_SLUG if include_provisioning else SELECT_BY_SLUG + b" AND status <> 'provisioning'"
    cur = await conn.execute(query, (slug,))
    row = await cur.fetchone()
    return tenant_from_row(row) if row else None


async def require_tenant(conn: AsyncConnection, slug: str) -> Tenant:
    tenant = await get_tenant_by_slug(conn, slug)
    if tenant is None:
        raise NotFound(f"no tenant {slug[:60]!r}")
    return tenant


async def list_tenants(conn: AsyncConnection, *, status: str | None = None) -> list[Tenant]:
    query = f"SELECT {TENANT_COLUMNS} FROM control.tenants WHERE status <> 'provisioning'"  # noqa: S608
    params: tuple[str, ...] = ()
    if status is not None:
        validate_choice(status, [s.value for s in Status if s is not Status.PROVISIONING], "status")
        query += " AND status = %s"
        params = (status,)
    cur = await conn.execute((query + " ORDER BY slug").encode(), params)
    return [tenant_from_row(row) for row in await cur.fetchall()]


async def set_status(db: Database, slug: str, status: Status, *, actor: str) -> Tenant:
    """Suspend, activate or deactivate; audited. Setting the current status again changes nothing."""
    async with db.owner() as conn, conn.transaction():
        await lock_tenant_slug(conn, slug)
        before = await require_tenant(conn, slug)
        if before.status is status:
            return before
        await conn.execute(
            "UPDATE control.tenants SET status = %s, updated_at = now() WHERE id = %s", (status, before.id)
        )
        after = await require_tenant(conn, slug)
        await audit.record(
            conn, actor=actor, action=f"tenant.{status}", tenant_id=before.id, tenant_slug=slug,
            before={"status": str(before.status)}, after={"status": str(status)},
        )  # fmt: skip
        return after


async def delete_tenant(db: Database, slug: str, *, actor: str) -> Tenant:
    """Remove the tenant's data wherever it lives, then its control-plane rows; keep the audit trail."""
    async with db.owner() as conn:
        tenant = await require_tenant(conn, slug)
    if tenant.placement is Placement.POOLED:
        async with owner_tenant_transaction(db, tenant.location) as conn:
            for table in _POOLED_TABLES_IN_DELETE_ORDER:
                await conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
    elif tenant.placement is Placement.DATABASE:
        assert tenant.database_name is not None
        await db.close_pool(tenant.server, tenant.database_name)
        await drop_database(db, tenant.database_name, server=tenant.server)
    async with db.owner() as conn, conn.transaction():
        await lock_tenant_slug(conn, slug)
        if tenant.placement is Placement.SCHEMA:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(tenant.schema_name))
            )
            await conn.execute(
                "DELETE FROM camcount_meta.migrations WHERE schema_name = %s", (tenant.schema_name,)
            )
        await conn.execute("DELETE FROM control.tenants WHERE id = %s", (tenant.id,))
        await audit.record(
            conn, actor=actor, action="tenant.delete", tenant_id=tenant.id, tenant_slug=slug,
            before=tenant.public_dict(),
        )  # fmt: skip
    return tenant


def parse_status(value: str) -> Status:
    if value not in ("active", "suspended", "inactive"):
        raise InvalidInput("status", f"{value[:40]!r} is not one of active, suspended, inactive")
    return Status(value)
