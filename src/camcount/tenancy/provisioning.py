"""Creating a tenant: all or nothing, idempotent, safe under concurrency.

Pooled and schema tenants are created in one transaction (tenant row, limits, configuration,
schema and tables), so a failure anywhere leaves nothing. A database tenant needs CREATE DATABASE,
which cannot run inside a transaction: its row is committed first as ``provisioning`` (invisible
to resolution), the database is copied from the server's migrated template, and any failure drops
the database and the row again. A retry of a half-provisioned tenant finishes or cleans it up.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, errors

from camcount.db import migrations as ledger
from camcount.db.pools import DEFAULT_SERVER, Database
from camcount.db.roles import grant_tenant_schema
from camcount.errors import Conflict, InvalidInput
from camcount.tenancy import audit
from camcount.tenancy.bootstrap import create_database_as_owner
from camcount.tenancy.bootstrap import drop_database as drop_tenant_database
from camcount.tenancy.lifecycle import SELECT_BY_SLUG as _SELECT_BY_SLUG
from camcount.tenancy.lifecycle import get_tenant_by_slug, lock_tenant_slug
from camcount.tenancy.models import TENANT_COLUMNS, Placement, Status, Tenant, tenant_from_row
from camcount.tenancy.partitions import PROVISIONED_PARTITIONS_AHEAD, ensure_partitions
from camcount.tenancy.placements import database_name_for, schema_name_for, template_database_name
from camcount.tenancy.validation import (
    validate_choice,
    validate_domain,
    validate_name,
    validate_server_name,
    validate_slug,
    validate_subdomain,
    validate_timezone,
)

# The seed's default configuration, written for every new tenant.
DEFAULT_CONFIG: tuple[tuple[str, str, str], ...] = (
    ("language", "en", "string"),
    ("date_format", "YYYY-MM-DD", "string"),
    ("backup_frequency", "daily", "string"),
    ("support_level", "standard", "string"),
)
TEMPLATE_BUSY_RETRIES = 20


@dataclass(frozen=True)
class TenantRequest:
    """A validated request to create a tenant."""

    slug: str
    name: str
    plan: str = "standard"
    placement: Placement = Placement.POOLED
    server: str = DEFAULT_SERVER
    domain: str | None = None
    subdomain: str | None = None
    timezone: str = "UTC"

    @classmethod
    def parse(
        cls,
        slug: str,
        *,
        name: str,
        plan: str = "standard",
        placement: str = "pooled",
        server: str | None = None,
        domain: str | None = None,
        subdomain: str | None = None,
        timezone: str = "UTC",
    ) -> TenantRequest:
        chosen = Placement(validate_choice(placement, [p.value for p in Placement], "placement"))
        if server is not None and chosen is not Placement.DATABASE:
            raise InvalidInput("server", "only database-placement tenants are placed on a chosen server")
        return cls(
            slug=validate_slug(slug),
            name=validate_name(name),
            plan=plan,
            placement=chosen,
            server=validate_server_name(server) if server is not None else DEFAULT_SERVER,
            domain=validate_domain(domain) if domain else None,
            subdomain=validate_subdomain(subdomain) if subdomain else None,
            timezone=validate_timezone(timezone),
        )

    def differences(self, tenant: Tenant) -> list[str]:
        """How an existing tenant of the same slug differs from this request."""
        wanted = {
            "name": self.name, "plan": self.plan, "placement": str(self.placement), "server": self.server,
            "domain": self.domain, "subdomain": self.subdomain, "timezone": self.timezone,
        }  # fmt: skip
        have = tenant.public_dict()
        return [
            f"{key} is {have[key]!r}, not {value!r}" for key, value in wanted.items() if have[key] != value
        ]


@dataclass(frozen=True)
class ProvisionResult:
    tenant: Tenant
    created: bool


async def create_tenant(db: Database, request: TenantRequest, *, actor: str) -> ProvisionResult:
    """Create the tenant, or report the identical one that exists; a conflicting one is refused."""
    if request.placement is Placement.DATABASE:
        db.server(request.server)  # unknown server: a clear error before anything is written
    async with db.owner() as conn:
        if request.placement is not Placement.DATABASE:
            return await _create_in_one_transaction(conn, db, request, actor=actor)
        # A database tenant takes several transactions, so one connection holds a session-level
        # lock on the slug throughout: a parallel create of the same slug waits, then finds the
        # finished tenant. A crash releases the lock with the connection; the next attempt resumes.
        await conn.execute(_LOCK_SLUG, (request.slug,))
        try:
            return await _create_database_tenant(conn, db, request, actor=actor)
        finally:
            await conn.execute(_UNLOCK_SLUG, (request.slug,))


# The same key as lifecycle.lock_tenant_slug, so status changes wait for provisioning too.
_LOCK_SLUG = "SELECT pg_advisory_lock(hashtext('camcount.tenant'), hashtext(%s))"
_UNLOCK_SLUG = "SELECT pg_advisory_unlock(hashtext('camcount.tenant'), hashtext(%s))"
_PLAN = (
    "SELECT retention_days, nextval(pg_get_serial_sequence('control.tenants', 'id')) FROM control.plans "
    "WHERE code = %s AND is_active"
)


async def _create_in_one_transaction(
    conn: AsyncConnection, db: Database, request: TenantRequest, *, actor: str
) -> ProvisionResult:
    """Pooled and schema tenants: one transaction, so a failure at any step leaves nothing.

    A pooled tenant is only rows: pipeline mode sends them in three round trips. Schema DDL runs
    multi-statement migration files, which pipeline mode cannot carry, so it goes plainly.
    """
    pipelined = request.placement is Placement.POOLED
    async with conn.pipeline() if pipelined else nullcontext(), conn.transaction():
        # The transaction-scoped lock serialises creates of one slug; the look-up after it sees
        # whatever the previous holder committed.
        await lock_tenant_slug(conn, request.slug)
        existing_cur = await conn.execute(_SELECT_BY_SLUG, (request.slug,))
        plan_cur = await conn.execute(_PLAN, (request.plan,))
        existing_row = await existing_cur.fetchone()
        if existing_row is not None:
            return _report_existing(request, tenant_from_row(existing_row))
        tenant = await _insert_tenant(conn, db, request, await plan_cur.fetchone(), actor=actor)
        if not pipelined:
            await _create_schema_storage(conn, db, tenant)
    return ProvisionResult(tenant, created=True)


def _report_existing(request: TenantRequest, existing: Tenant) -> ProvisionResult:
    differences = request.differences(existing)
    if differences:
        raise Conflict(
            f"tenant {request.slug!r} already exists with other settings: " + "; ".join(differences)
        )
    return ProvisionResult(existing, created=False)


async def _create_database_tenant(
    control: AsyncConnection, db: Database, request: TenantRequest, *, actor: str
) -> ProvisionResult:
    existing = await get_tenant_by_slug(control, request.slug, include_provisioning=True)
    if existing is not None and existing.status is Status.PROVISIONING and not request.differences(existing):
        # A previous attempt died half-way: finish it now.
        resumed = await _create_database_storage(control, db, existing, actor=actor, resume=True)
        return ProvisionResult(resumed, created=True)
    if existing is not None:
        return _report_existing(request, existing)
    async with control.transaction():
        cur = await control.execute(_PLAN, (request.plan,))
        tenant = await _insert_tenant(control, db, request, await cur.fetchone(), actor=actor)
    return ProvisionResult(await _create_database_storage(control, db, tenant, actor=actor), created=True)


_INSERT_TENANT = (  # a constant column list, no input
    "INSERT INTO control.tenants (id, slug, name, domain, subdomain, status, plan, placement, server, schema_name, "  # noqa: S608
    "database_name, timezone) OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    f"RETURNING {TENANT_COLUMNS}"
).encode()
_INSERT_LIMITS = """
    INSERT INTO control.tenant_limits (tenant_id, resource, limit_value, reset_period)
    SELECT %s, resource, limit_value, reset_period FROM control.plan_limits WHERE plan = %s
"""
_INSERT_CONFIGS = """
    INSERT INTO control.tenant_configs (tenant_id, key, value, value_type)
    SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[])
"""
_AUDIT_CREATE = """
    INSERT INTO control.audit_log (actor, action, tenant_id, tenant_slug, after)
    SELECT %s, 'tenant.create', t.id, t.slug, to_jsonb(t) FROM control.tenants t WHERE t.id = %s
"""


async def _insert_tenant(
    conn: AsyncConnection,
    db: Database,
    request: TenantRequest,
    plan_row: tuple[Any, ...] | None,
    *,
    actor: str,
) -> Tenant:
    """The tenant row, its limits, its default configuration and the audit entry.

    ``plan_row`` is (retention_days, a fresh tenant id) from ``_PLAN``, or None for an unknown plan.
    """
    if plan_row is None:
        raise InvalidInput("plan", f"{request.plan[:40]!r} is not an active plan")
    retention_days, tenant_id = plan_row
    is_database = request.placement is Placement.DATABASE
    configs = [*DEFAULT_CONFIG, ("timezone", request.timezone, "string"),
               ("retention_days", str(retention_days), "integer")]  # fmt: skip
    try:
        cur = await conn.execute(
            _INSERT_TENANT,
            (
                tenant_id, request.slug, request.name, request.domain, request.subdomain,
                Status.PROVISIONING if is_database else Status.ACTIVE, request.plan, request.placement,
                request.server, schema_name_for(request.placement, tenant_id),
                database_name_for(db.main_dbname, tenant_id) if is_database else None, request.timezone,
            ),
        )  # fmt: skip
        row = await cur.fetchone()  # in pipeline mode, this is where a unique violation shows
    except errors.UniqueViolation as exc:
        column = "domain" if "domain" in str(exc) else "subdomain" if "subdomain" in str(exc) else "slug"
        raise Conflict(f"{column} is already in use by another tenant") from None
    assert row is not None
    await conn.execute(_INSERT_LIMITS, (tenant_id, request.plan))
    await conn.execute(_INSERT_CONFIGS, (tenant_id, *map(list, zip(*configs, strict=True))))
    await conn.execute(_AUDIT_CREATE, (actor, tenant_id))
    return tenant_from_row(row)


async def _create_schema_storage(conn: AsyncConnection, db: Database, tenant: Tenant) -> None:
    """Schema placement: its own schema and tables. Pooled uses the shared schema; database waits."""
    if tenant.placement is Placement.SCHEMA:
        await ledger.apply_pending(conn, tenant.schema_name, ledger.load_migrations(ledger.TENANT_TREE))
        await ensure_partitions(conn, tenant.schema_name, ahead=PROVISIONED_PARTITIONS_AHEAD)
        await grant_tenant_schema(conn, tenant.schema_name, db.settings)


async def _create_database_storage(
    control: AsyncConnection, db: Database, tenant: Tenant, *, actor: str, resume: bool = False
) -> Tenant:
    """Copy the template into the tenant's database, then mark the tenant active.

    ``resume``: a previous attempt for this very tenant may have created the database already.
    On failure, the database is dropped only if it is this tenant's (never a stranger's that
    happened to have the name), and the provisioning row is removed.
    """
    assert tenant.database_name is not None
    ours = resume
    try:
        ours = await _copy_template(db, tenant, adopt_existing=resume) or resume
        async with db.owner(tenant.database_name, server=tenant.server) as conn, conn.transaction():
            # The template is kept migrated; this catches up if a migration landed in between.
            await ledger.apply_pending(conn, tenant.schema_name, ledger.load_migrations(ledger.TENANT_TREE))
            await ensure_partitions(conn, tenant.schema_name, ahead=PROVISIONED_PARTITIONS_AHEAD)
            await grant_tenant_schema(conn, tenant.schema_name, db.settings)
        async with control.transaction():
            await control.execute(
                "UPDATE control.tenants SET status = 'active', updated_at = now() WHERE id = %s", (tenant.id,)
            )
            await audit.record(
                control,
                actor=actor,
                action="tenant.database_ready",
                tenant_id=tenant.id,
                tenant_slug=tenant.slug,
            )
            active = await get_tenant_by_slug(control, tenant.slug)
    except BaseException:
        await _undo_database_tenant(control, db, tenant, actor=actor, drop_database=ours)
        raise
    assert active is not None
    return active


async def _copy_template(db: Database, tenant: Tenant, *, adopt_existing: bool) -> bool:
    """CREATE DATABASE from the template; True if this call created it."""
    assert tenant.database_name is not None
    template = template_database_name(db.main_dbname)
    for attempt in range(TEMPLATE_BUSY_RETRIES):
        try:
            await create_database_as_owner(db, tenant.database_name, server=tenant.server, template=template)
            return True
        except errors.DuplicateDatabase:
            if adopt_existing:
                return False  # the previous attempt for this tenant got this far
            raise Conflict(
                f"a database named {tenant.database_name!r} already exists on server {tenant.server!r}; "
                "camcount will not adopt a database it did not create"
            ) from None
        except errors.ObjectInUse:
            # Someone (a migration) is connected to the template; copying needs it idle.
            await asyncio.sleep(0.05 * (attempt + 1))
    raise Conflict("the tenant template database stayed busy; try again shortly")


async def _undo_database_tenant(
    control: AsyncConnection, db: Database, tenant: Tenant, *, actor: str, drop_database: bool
) -> None:
    assert tenant.database_name is not None
    await db.close_pool(tenant.server, tenant.database_name)
    if drop_database:
        await drop_tenant_database(db, tenant.database_name, server=tenant.server)
    async with control.transaction():
        await control.execute(
            "DELETE FROM control.tenants WHERE id = %s AND status = 'provisioning'", (tenant.id,)
        )
        await audit.record(
            control, actor=actor, action="tenant.create_failed", tenant_id=tenant.id, tenant_slug=tenant.slug
        )
