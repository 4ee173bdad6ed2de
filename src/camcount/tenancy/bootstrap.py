"""``camcount init`` and ``camcount migrate``: bring every target to the current versions.

Order: roles and the main database; the control plane; the shared ``pooled`` schema; the template
database of each server; then every schema tenant and tenant database, with a bounded number of
parallel workers. A failing tenant is reported and left exactly at its previous versions; the
others go on, and a re-run finishes the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import AsyncConnection, errors, sql

from camcount.db import migrations as ledger
from camcount.db.pools import DEFAULT_SERVER, Database
from camcount.db.roles import (
    ensure_database,
    ensure_roles,
    grant_control_plane,
    grant_database,
    grant_tenant_schema,
)
from camcount.tenancy.models import DATABASE_TENANT_SCHEMA, POOLED_SCHEMA
from camcount.tenancy.partitions import ensure_partitions
from camcount.tenancy.placements import template_database_name

MAINTENANCE_DATABASE = "postgres"


@dataclass(frozen=True)
class Target:
    """One schema in one database that a migration tree applies to."""

    label: str
    tree: str
    server: str
    dbname: str
    schema: str


@dataclass
class TargetResult:
    target: Target
    applied: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class MigrationPlan:
    """Targets with their pending versions (``migrate --status``)."""

    behind: list[tuple[Target, list[str]]]
    total_targets: int


ProgressCallback = Callable[[int, int], None]


async def create_database_as_owner(
    db: Database, dbname: str, *, server: str, template: str | None = None
) -> None:
    """CREATE DATABASE owned by the owner role (optionally copied from a template)."""
    async with db.login(MAINTENANCE_DATABASE, server=server) as conn:
        await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.settings.owner_role)))
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        await conn.execute(statement)
        await grant_database(conn, dbname, db.settings)


async def drop_database(db: Database, dbname: str, *, server: str) -> None:
    """DROP DATABASE as the owner role, disconnecting anyone still connected to it."""
    async with db.login(MAINTENANCE_DATABASE, server=server) as conn:
        await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.settings.owner_role)))
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


async def prepare_server(db: Database, server: str) -> None:
    """Roles on the server, and its main (default server) or template database."""
    async with db.login(MAINTENANCE_DATABASE, server=server) as conn:
        await ensure_roles(conn, db.settings)
        await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.settings.owner_role)))
        wanted = [template_database_name(db.main_dbname)]
        if server == DEFAULT_SERVER:
            wanted.insert(0, db.main_dbname)
        for dbname in wanted:
            await ensure_database(conn, dbname)
            await grant_database(conn, dbname, db.settings)


async def initialize(db: Database, *, extra_tenant_dirs: Iterable[Path] = ()) -> list[TargetResult]:
    """``camcount init``: roles, databases, and every target migrated. Idempotent."""
    await prepare_server(db, DEFAULT_SERVER)
    results = await migrate_all(db, extra_tenant_dirs=extra_tenant_dirs)
    await regrant_tenant_databases(db)
    return results


async def regrant_tenant_databases(db: Database) -> int:
    """Re-assert the privileges on every database tenant's database (what an upgrade changed in them,
    such as ``TEMPORARY`` no longer granted to the application role). Returns how many."""
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT server, database_name FROM control.tenants WHERE placement = 'database' "
            "AND status <> 'provisioning' AND database_name IS NOT NULL ORDER BY server, id"
        )
        by_server: dict[str, list[str]] = {}
        for server, dbname in await cur.fetchall():
            by_server.setdefault(server, []).append(dbname)
    for server, names in by_server.items():
        async with db.login(MAINTENANCE_DATABASE, server=server) as conn:
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.settings.owner_role)))
            for dbname in names:
                await grant_database(conn, dbname, db.settings)
    return sum(len(names) for names in by_server.values())


async def _migrate_shared_targets(
    db: Database, tenant_migrations: list[ledger.Migration]
) -> list[TargetResult]:
    """The control plane and the pooled schema, in the main database, before any tenant."""
    control = Target("control plane", ledger.CONTROL_TREE, DEFAULT_SERVER, db.main_dbname, "control")
    pooled = Target("pooled tenants", ledger.TENANT_TREE, DEFAULT_SERVER, db.main_dbname, POOLED_SCHEMA)
    results = []
    async with db.owner() as conn:
        await ledger.ensure_ledger(conn)
        async with conn.transaction():
            applied = await ledger.apply_pending(conn, "control", ledger.load_migrations(ledger.CONTROL_TREE))
            await grant_control_plane(conn, db.settings)
        results.append(TargetResult(control, applied))
        results.append(await _apply_tenant_target(conn, pooled, tenant_migrations, db, partitions=True))
    return results


async def _apply_tenant_target(
    conn: AsyncConnection,
    target: Target,
    migrations: list[ledger.Migration],
    db: Database,
    *,
    partitions: bool = False,
) -> TargetResult:
    """One target in one transaction. ``partitions``: also create monthly partitions ahead (the
    shared pooled schema and templates; tenants' own partitions are the partition job's work)."""
    result = TargetResult(target)
    try:
        async with conn.transaction():
            result.applied = await ledger.apply_pending(conn, target.schema, migrations)
            if partitions:
                await ensure_partitions(conn, target.schema, ahead=db.settings.partitions_ahead_months)
            if result.applied:
                await grant_tenant_schema(conn, target.schema, db.settings)
    except errors.Error as exc:
        result.error = f"{type(exc).__name__}: {exc}".strip()
    return result


async def list_targets(db: Database) -> list[Target]:
    """Templates and tenant targets (not control and pooled, which are always migrated first)."""
    targets = [
        Target(f"template on {server}", ledger.TENANT_TREE, server, template_database_name(db.main_dbname),
               DATABASE_TENANT_SCHEMA)
        for server in db.known_servers
    ]  # fmt: skip
    async with db.owner() as conn:
        cur = await conn.execute(
            """
            SELECT slug, placement, server, schema_name, database_name FROM control.tenants
            WHERE placement <> 'pooled' AND status <> 'provisioning' ORDER BY id
            """
        )
        for slug, placement, server, schema, dbname in await cur.fetchall():
            targets.append(
                Target(
                    f"tenant {slug} ({placement})",
                    ledger.TENANT_TREE,
                    server,
                    dbname or db.main_dbname,
                    schema,
                )
            )
    return targets


async def plan_migrations(db: Database, *, extra_tenant_dirs: Iterable[Path] = ()) -> MigrationPlan:
    """Which targets are behind, reading each database's ledger once."""
    tenant_versions = [m.version for m in ledger.load_migrations(ledger.TENANT_TREE, extra_tenant_dirs)]
    control_versions = [m.version for m in ledger.load_migrations(ledger.CONTROL_TREE)]
    targets = [
        Target("control plane", ledger.CONTROL_TREE, DEFAULT_SERVER, db.main_dbname, "control"),
        Target("pooled tenants", ledger.TENANT_TREE, DEFAULT_SERVER, db.main_dbname, POOLED_SCHEMA),
        *await list_targets(db),
    ]
    by_database: dict[tuple[str, str], list[Target]] = {}
    for target in targets:
        by_database.setdefault((target.server, target.dbname), []).append(target)
    behind: list[tuple[Target, list[str]]] = []
    for (server, dbname), members in by_database.items():
        try:
            async with db.owner(dbname, server=server) as conn:
                done = await ledger.applied_versions(conn)
        except (errors.UndefinedTable, errors.OperationalError):
            done = {}
        for target in members:
            wanted = control_versions if target.tree == ledger.CONTROL_TREE else tenant_versions
            missing = [v for v in wanted if v not in done.get(target.schema, set())]
            if missing:
                behind.append((target, missing))
    return MigrationPlan(behind, len(targets))


async def migrate_all(
    db: Database,
    *,
    extra_tenant_dirs: Iterable[Path] = (),
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[TargetResult]:
    """Apply pending versions everywhere. Returns one result per target that had work or failed."""
    tenant_migrations = ledger.load_migrations(ledger.TENANT_TREE, extra_tenant_dirs)
    results = [r for r in await _migrate_shared_targets(db, tenant_migrations) if r.applied or r.error]
    plan = await plan_migrations(db, extra_tenant_dirs=extra_tenant_dirs)
    pending = [target for target, _ in plan.behind if target.tree == ledger.TENANT_TREE]
    semaphore = asyncio.Semaphore(workers or db.settings.migrate_workers)
    finished = 0

    async def run(target: Target) -> TargetResult:
        nonlocal finished
        async with semaphore:
            try:
                async with db.owner(target.dbname, server=target.server) as conn:
                    if target.dbname != db.main_dbname:
                        await ledger.ensure_ledger(conn)  # the main database's was made first
                    is_template = target.dbname == template_database_name(db.main_dbname)
                    result = await _apply_tenant_target(
                        conn, target, tenant_migrations, db, partitions=is_template
                    )
            except errors.Error as exc:
                result = TargetResult(target, error=f"{type(exc).__name__}: {exc}".strip())
        finished += 1
        if progress is not None:
            progress(finished, len(pending))
        return result

    results.extend(await asyncio.gather(*(run(target) for target in pending)))
    return results
