"""Isolation at the database itself, for every placement.

Connected as the application role with tenant A's context, no statement reads or changes tenant
B's rows, whatever it names (B's ids, B's tenant_id, B's schema); with no context, tenant tables
show nothing; the control plane's secrets and the owner's powers stay out of reach.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors, sql

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import Tenant
from tests.fixtures.seed import SeededIds, seed_tenant_data

TENANT_TABLES = (
    "sites", "cameras", "users", "api_keys", "counting_results", "counting_event_ids", "counting_rollups",
)  # fmt: skip
FINGERPRINT = sql.SQL(
    "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {} t"
)
ID_COLUMN = {
    "counting_results": "camera_id",
    "counting_event_ids": "camera_id",
    "counting_rollups": "camera_id",
}


@contextmanager
def app_connection(db: Database, tenant: Tenant) -> Iterator[psycopg.Connection]:
    """A raw connection as the application role to the database where ``tenant`` lives."""
    with psycopg.connect(db.app_conninfo(tenant.database_name, tenant.server)) as conn:
        yield conn


def set_context(conn: psycopg.Connection, tenant_id: int | None, schema: str) -> None:
    conn.execute(
        "SELECT set_config('search_path', %s, true), set_config('camcount.tenant_id', %s, true)",
        (sql.Identifier(schema).as_string(), "" if tenant_id is None else str(tenant_id)),
    )


@pytest.fixture
async def seeded(db: Database, tenant_a: Tenant, tenant_b: Tenant) -> tuple[SeededIds, SeededIds]:
    return await seed_tenant_data(db, tenant_a), await seed_tenant_data(db, tenant_b)


async def test_each_tenant_sees_exactly_its_own_rows(
    db: Database, tenant_a: Tenant, tenant_b: Tenant, seeded: tuple[SeededIds, SeededIds]
) -> None:
    for tenant in (tenant_a, tenant_b):
        async with tenant_transaction(db, tenant.location) as conn:
            for table in TENANT_TABLES:
                cur = await conn.execute(
                    sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(table))
                )
                assert [row[0] for row in await cur.fetchall()] == [tenant.id], table


def test_statements_naming_b_neither_read_nor_change_b(
    db: Database, tenant_a: Tenant, tenant_b: Tenant, seeded: tuple[SeededIds, SeededIds]
) -> None:
    ids_a, ids_b = seeded
    before = asyncio.run(_fingerprint_in_new_loop(db, tenant_b))
    with app_connection(db, tenant_a) as conn:
        for table in TENANT_TABLES:
            column = ID_COLUMN.get(table, "id")
            b_id = ids_b.camera_id if column == "camera_id" else _b_id(ids_b, table)
            qualified = [sql.Identifier(table)]
            if tenant_b.database_name is None:  # B's tables are in this database: name them outright too
                qualified.append(sql.Identifier(ids_b.schema, table))
            for target in qualified:
                with conn.transaction():
                    set_context(conn, ids_a.tenant_id, ids_a.schema)
                    rows = _try(conn, sql.SQL("SELECT tenant_id FROM {} WHERE {} = %s OR tenant_id = %s"), target,
                                column, (b_id, ids_b.tenant_id))  # fmt: skip
                    assert all(r[0] == ids_a.tenant_id for r in rows), (table, rows)
                    _try(conn, sql.SQL("UPDATE {} SET tenant_id = tenant_id WHERE {} = %s OR tenant_id = %s"),
                         target, column, (b_id, ids_b.tenant_id))  # fmt: skip
                    _try(
                        conn, sql.SQL("DELETE FROM {} WHERE tenant_id = %s"), target, None, (ids_b.tenant_id,)
                    )
                with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedTable)), conn.transaction():
                    set_context(conn, ids_a.tenant_id, ids_a.schema)
                    conn.execute(
                        sql.SQL("INSERT INTO {} (tenant_id, name) VALUES (%s, 'intruder')").format(
                            sql.Identifier(ids_a.schema, "sites")
                        ),
                        (ids_b.tenant_id,),
                    )
    after = asyncio.run(_fingerprint_in_new_loop(db, tenant_b))
    assert after == before


def _b_id(ids: SeededIds, table: str) -> int:
    return {"sites": ids.site_id, "cameras": ids.camera_id, "users": ids.user_id, "api_keys": ids.key_id}[
        table
    ]


def _try(
    conn: psycopg.Connection,
    template: sql.SQL,
    target: sql.Identifier,
    column: str | None,
    params: tuple[int, ...],
) -> list[tuple[int, ...]]:
    """Run a statement in a savepoint; a permission error is as good as no rows."""
    statement = template.format(target, sql.Identifier(column)) if column else template.format(target)
    try:
        with conn.transaction():
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []
    except errors.InsufficientPrivilege:
        return []


async def _fingerprint_in_new_loop(db: Database, tenant: Tenant) -> list[tuple[str, int, str]]:
    """B's fingerprint via the owner (own loop: this sync test runs outside the session loop)."""
    async with db.owner(tenant.database_name, server=tenant.server) as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('search_path', %s, true), set_config('camcount.tenant_id', %s, true)",
            (sql.Identifier(tenant.schema_name).as_string(), str(tenant.id)),
        )
        result = []
        for table in TENANT_TABLES:
            cur = await conn.execute(FINGERPRINT.format(sql.Identifier(table)))
            count, digest = await cur.fetchone() or (0, "")
            result.append((table, count, digest))
        return result


def test_without_a_tenant_context_tenant_tables_are_empty(
    db: Database, tenant_a: Tenant, seeded: tuple[SeededIds, SeededIds]
) -> None:
    with app_connection(db, tenant_a) as conn:
        for context in (None, "unset"):
            with conn.transaction():
                if context is None:
                    set_context(conn, None, tenant_a.schema_name)  # set to '' explicitly
                else:
                    conn.execute("SELECT set_config('search_path', %s, true)", (tenant_a.schema_name,))
                for table in TENANT_TABLES:
                    cur = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
                    assert cur.fetchone() == (0,), table
                with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                    conn.execute("INSERT INTO sites (tenant_id, name) VALUES (%s, 'x')", (tenant_a.id,))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    table=st.sampled_from(TENANT_TABLES),
    predicate=st.sampled_from(
        [
            "tenant_id = %(b)s",
            "tenant_id <> %(a)s",
            "true",
            "tenant_id IN (%(a)s, %(b)s)",
            "tenant_id::text LIKE '%%'",
            "tenant_id = %(b)s OR 1 = 1",
            "tenant_id = (SELECT max(tenant_id) FROM sites)",
        ]
    ),
    context=st.sampled_from(["a", "none", "unknown", "not-a-number"]),
)
def _attack(
    conn: psycopg.Connection, ids: tuple[SeededIds, SeededIds], table: str, predicate: str, context: str
) -> None:
    """With A's context only A's rows; with none, an unknown or a malformed one, no rows or an error."""
    a, b = ids
    setting = {"a": str(a.tenant_id), "none": "", "unknown": "0", "not-a-number": "1; DROP TABLE sites"}[
        context
    ]
    query = sql.SQL("SELECT tenant_id FROM {} WHERE " + predicate).format(sql.Identifier(table))  # type: ignore[arg-type]
    try:
        with conn.transaction():
            conn.execute(
                "SELECT set_config('search_path', %s, true), set_config('camcount.tenant_id', %s, true)",
                (sql.Identifier(a.schema).as_string(), setting),
            )
            rows = {r[0] for r in conn.execute(query, {"a": a.tenant_id, "b": b.tenant_id}).fetchall()}
    except errors.InvalidTextRepresentation:
        assert context == "not-a-number"  # a malformed context fails the statement: closed, not open
        return
    assert rows <= ({a.tenant_id} if context == "a" else set())


def test_generated_predicates_never_reach_b(
    db: Database, tenant_a: Tenant, seeded: tuple[SeededIds, SeededIds]
) -> None:
    with app_connection(db, tenant_a) as conn:
        _attack(conn, seeded)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT secret_ciphertext FROM control.tenant_configs",
        "SELECT * FROM control.tenant_configs",
        "SELECT url_ciphertext FROM control.database_servers",
        "SELECT * FROM control.audit_log",
        "UPDATE control.tenants SET status = 'active'",
        "INSERT INTO control.tenants (slug, name, plan, placement, schema_name) VALUES ('x-y-z', 'x', 'basic', 'pooled', 'pooled')",
        "DELETE FROM control.tenant_limits",
        "SELECT * FROM pooled.counting_results_default",
        "SET ROLE camcount_owner",
        "CREATE EXTENSION IF NOT EXISTS dblink",
        "CREATE SCHEMA intruder",
        "ALTER TABLE pooled.sites DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON pooled.sites",
    ],
)
def test_the_application_role_cannot_reach_secrets_or_owner_powers(db: Database, statement: str) -> None:
    with psycopg.connect(db.app_conninfo()) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement.encode())


def test_the_application_role_is_neither_superuser_nor_owner_nor_bypassrls(db: Database) -> None:
    with psycopg.connect(db.app_conninfo()) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
        assert owned == (0,)
        forced = conn.execute(
            "SELECT count(*) FILTER (WHERE NOT (relrowsecurity AND relforcerowsecurity)), count(*) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pooled' AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition"
        ).fetchone()
        assert forced == (0, len(TENANT_TABLES))
