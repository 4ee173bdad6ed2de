"""Databases, roles and grants.

Two roles: the owner (NOLOGIN; owns every object, runs migrations; the URL's login becomes it
with ``SET ROLE``) and the application role (LOGIN, not superuser, not owner, no BYPASSRLS; only
the grants below). Everything here is idempotent and safe to run from parallel processes.
"""

from __future__ import annotations

import asyncio
from typing import LiteralString

from psycopg import AsyncConnection, errors, sql

from camcount.config import Settings

# Control-plane tables the application role may read (tenant resolution, limits, public config).
_APP_READABLE_CONTROL_TABLES = ("plans", "plan_limits", "plan_prices", "tenants", "tenant_limits")
# Never granted: tenant_configs.secret_ciphertext, database_servers.url_ciphertext, audit_log.
_APP_READABLE_CONFIG_COLUMNS = ("tenant_id", "key", "value_type", "value", "is_secret", "updated_at")
# Limits and metering (camcount.limits): what the API process itself reads and writes.
_APP_LIMITS_READABLE = ("tenant_storage", "usage_threshold_events", "tenant_billing")
_APP_LIMITS_STATEMENTS: tuple[LiteralString, ...] = (
    "GRANT UPDATE (current_usage, period_start, updated_at) ON control.tenant_limits TO {}",
    "GRANT INSERT, UPDATE ON control.tenant_resource_usage TO {}",
    "GRANT SELECT ON control.tenant_resource_usage TO {}",
    "GRANT INSERT ON control.usage_threshold_events TO {}",
)
# Operations (control 0004, camcount.monitoring): ingestion counters written by the API; the job
# ledger and health snapshots read by /metrics.
_APP_OPERATIONS_STATEMENTS: tuple[LiteralString, ...] = (
    "GRANT SELECT, INSERT, UPDATE ON control.ingestion_counters TO {}",
    "GRANT SELECT ON control.job_runs, control.tenant_health TO {}",
)

_ROLE_RACES = (errors.DuplicateObject, errors.UniqueViolation, errors.InternalError_)


async def ensure_database(conn: AsyncConnection, dbname: str) -> bool:
    """Create ``dbname`` if missing (``conn`` is in autocommit). Returns True when it was created."""
    cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
    if await cur.fetchone():
        return False
    try:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except errors.DuplicateDatabase:
        return False
    return True


async def ensure_roles(conn: AsyncConnection, settings: Settings) -> None:
    """Create or upgrade the owner and application roles (``conn``: the URL's login, autocommit)."""
    for attempt in range(5):
        try:
            await _ensure_roles_once(conn, settings)
            return
        except _ROLE_RACES:
            # Another process created or altered the same role at the same moment; look again.
            await asyncio.sleep(0.05 * (attempt + 1))
    await _ensure_roles_once(conn, settings)


async def _ensure_roles_once(conn: AsyncConnection, settings: Settings) -> None:
    owner = sql.Identifier(settings.owner_role)
    app = sql.Identifier(settings.app_role)
    if not await _role_exists(conn, settings.owner_role):
        await conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN CREATEDB").format(owner))
    if not await _role_exists(conn, settings.app_role):
        await conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(app))
    # Re-asserted on every init so a hand-edited role is brought back to the safe shape.
    await conn.execute(
        sql.SQL("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION").format(app)
    )
    if settings.app_password is not None:
        await conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                app, sql.Literal(settings.app_password.get_secret_value())
            )
        )
    cur = await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = await cur.fetchone()
    if not (row and row[0]):
        # A non-superuser login must be a member of the owner role to SET ROLE to it.
        await conn.execute(sql.SQL("GRANT {} TO current_user").format(owner))


async def _role_exists(conn: AsyncConnection, name: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    return await cur.fetchone() is not None


async def grant_database(conn: AsyncConnection, dbname: str, settings: Settings) -> None:
    """Only the owner and the application role may connect; the owner may create schemas."""
    db = sql.Identifier(dbname)
    await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
    await conn.execute(
        sql.SQL("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {} TO {}").format(
            db, sql.Identifier(settings.owner_role)
        )
    )
    # Not TEMPORARY: the application creates nothing, not even temporary tables (ingestion sends
    # arrays instead of staging). Revoked explicitly for databases granted it by earlier versions.
    app = sql.Identifier(settings.app_role)
    await conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, app))
    await conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(db, app))


async def grant_control_plane(conn: AsyncConnection, settings: Settings) -> None:
    """The application role's view of the control plane: read what resolution and limits need."""
    app = sql.Identifier(settings.app_role)
    await conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA control FROM PUBLIC"))
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA control TO {}").format(app))
    tables = sql.SQL(", ").join(sql.Identifier("control", t) for t in _APP_READABLE_CONTROL_TABLES)
    await conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(tables, app))
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in _APP_READABLE_CONFIG_COLUMNS)
    await conn.execute(sql.SQL("GRANT SELECT ({}) ON control.tenant_configs TO {}").format(columns, app))
    # API authentication (control 0002): device key prefixes are written by the API when keys are
    # created or revoked; operator tokens are read (created by `camcount operator token`), and only
    # their last_used_at is written (camcount.accounts.key_usage).
    await conn.execute(
        sql.SQL("GRANT SELECT, INSERT, DELETE ON control.device_key_directory TO {}").format(app)
    )
    await conn.execute(
        sql.SQL(
            "GRANT SELECT (id, name, prefix, token_hash, revoked_at, last_used_at), UPDATE (last_used_at) "
            "ON control.operator_tokens TO {}"
        ).format(app)
    )
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA camcount_meta TO {}").format(app))
    limits_tables = sql.SQL(", ").join(sql.Identifier("control", t) for t in _APP_LIMITS_READABLE)
    await conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(limits_tables, app))
    for statement in _APP_LIMITS_STATEMENTS:
        await conn.execute(sql.SQL(statement).format(app))
    for statement in _APP_OPERATIONS_STATEMENTS:
        await conn.execute(sql.SQL(statement).format(app))
    await conn.execute(sql.SQL("GRANT SELECT ON camcount_meta.migrations TO {}").format(app))


async def grant_tenant_schema(conn: AsyncConnection, schema: str, settings: Settings) -> None:
    """DML on the schema's tables, never on partitions: those have no RLS of their own."""
    cur = await conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname
        """,
        (schema,),
    )
    tables = [row[0] for row in await cur.fetchall()]
    app = sql.Identifier(settings.app_role)
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), app))
    if tables:
        names = sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
        await conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(names, app))
