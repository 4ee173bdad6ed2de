"""Where a tenant's tables live, by placement: names, and creating or dropping the storage.

Schema names and database names are derived from the tenant id, never from user input, and
always pass through ``sql.Identifier``.
"""

from __future__ import annotations

from camcount.tenancy.models import DATABASE_TENANT_SCHEMA, POOLED_SCHEMA, Placement


def schema_name_for(placement: Placement, tenant_id: int) -> str:
    if placement is Placement.POOLED:
        return POOLED_SCHEMA
    if placement is Placement.SCHEMA:
        return f"t_{tenant_id}"
    return DATABASE_TENANT_SCHEMA


def database_name_for(main_dbname: str, tenant_id: int) -> str:
    """Tenant databases are named after the main database so several installations can share a server."""
    return f"{main_dbname}_t{tenant_id}"


def template_database_name(main_dbname: str) -> str:
    """The migrated, empty tenant database that new tenant databases are copied from."""
    return f"{main_dbname}_template"
