"""The migration runner: versioned SQL files applied to many targets.

A *target* is one schema in one database: ``control`` (the control plane), the shared ``pooled``
schema, each schema tenant's ``t_<id>``, the ``tenant`` schema of each tenant database, and of the
per-server template database that new tenant databases are copied from. Each database keeps its
own ledger (``camcount_meta.migrations``, keyed by schema), written in the same transaction as the
DDL, so a target is always exactly at the versions its ledger names.

Alembic was considered and not used: it tracks one version per connection target and has no
notion of fanning one script out to thousands of schemas with parallel workers and a per-target
ledger; the runner here is small and does exactly that. One target's failure rolls back that
target alone and is reported; a re-run applies what is still pending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from psycopg import AsyncConnection, sql

CONTROL_TREE = "control"
TENANT_TREE = "tenant"

_LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS camcount_meta;
CREATE TABLE IF NOT EXISTS camcount_meta.migrations (
    schema_name  text NOT NULL,
    version      text NOT NULL,
    name         text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, version)
);
"""


@dataclass(frozen=True)
class Migration:
    version: str  # the file name's leading digits, e.g. "0001"
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(tree: str, extra_dirs: Iterable[Path] = ()) -> list[Migration]:
    """The tree's migrations in version order; ``extra_dirs`` add more (tests, plug-ins)."""
    files: list[tuple[str, str]] = []
    packaged = resources.files("camcount.migrations") / tree
    files.extend(
        (f.name, f.read_text(encoding="utf-8")) for f in packaged.iterdir() if f.name.endswith(".sql")
    )
    for folder in extra_dirs:
        files.extend((f.name, f.read_text(encoding="utf-8")) for f in folder.glob("*.sql"))
    migrations = [Migration(name.split("_", 1)[0], name.removesuffix(".sql"), text) for name, text in files]
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {tree}: {versions}")
    return migrations


async def ensure_ledger(conn: AsyncConnection) -> None:
    """Create this database's ledger if missing (serialised: parallel CREATE IF NOT EXISTS races)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('camcount.ledger'))")
        await conn.execute(_LEDGER_DDL)


async def applied_versions(conn: AsyncConnection, schemas: list[str] | None = None) -> dict[str, set[str]]:
    """Applied versions per schema in this database (all schemas, or only those named)."""
    query = "SELECT schema_name, array_agg(version) FROM camcount_meta.migrations"
    params: tuple[object, ...] = ()
    if schemas is not None:
        query += " WHERE schema_name = ANY(%s)"
        params = (schemas,)
    cur = await conn.execute(query + " GROUP BY schema_name", params)
    return {schema: set(versions) for schema, versions in await cur.fetchall()}


async def core_migrations_pending(conn: AsyncConnection) -> list[str]:
    """The control plane's and the shared ``pooled`` schema's migrations not applied in the main
    database, as ``schema/version``; UndefinedTable where camcount was never initialised."""
    applied = await applied_versions(conn, ["control", "pooled"])
    wanted = [("control", m.version) for m in load_migrations(CONTROL_TREE)]
    wanted += [("pooled", m.version) for m in load_migrations(TENANT_TREE)]
    return [f"{schema}/{version}" for schema, version in wanted if version not in applied.get(schema, set())]


async def apply_pending(conn: AsyncConnection, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply what ``schema`` lacks, inside the caller's transaction. Returns the versions applied.

    The schema is created if missing. A per-schema advisory lock makes two runners wait for each
    other instead of applying the same version twice.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('camcount.migrate'), hashtext(%s))", (schema,))
    done = (await applied_versions(conn, [schema])).get(schema, set())
    pending = [m for m in migrations if m.version not in done]
    if not pending:
        return []
    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    await conn.execute("SELECT set_config('search_path', %s, true)", (sql.Identifier(schema).as_string(),))
    await conn.execute("SET LOCAL lock_timeout = '15s'")
    for migration in pending:
        # No parameters: psycopg sends it with the simple protocol, so a file may hold many statements.
        await conn.execute(migration.sql.encode())
        await conn.execute(
            "INSERT INTO camcount_meta.migrations (schema_name, version, name, checksum) VALUES (%s, %s, %s, %s)",
            (schema, migration.version, migration.name, migration.checksum),
        )
    return [m.version for m in pending]
