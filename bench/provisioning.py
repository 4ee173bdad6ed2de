"""Provisioning time per tenant, per placement, against the bare SQL it wraps (issue 2).

Run: ``.venv/bin/python -m bench.provisioning [--count 200] [--url URL]``. It uses a database of
its own (``camcount_bench_prov``, dropped first) on the server in ``--url``/``CAMCOUNT_BENCH_URL``
(default: the local PostgreSQL). Baselines, measured in the same run on the same server:
- pooled: the bare inserts of a tenant row and its limit rows in one transaction;
- schema: the bare DDL of the same tables (CREATE SCHEMA + the tenant DDL file + partitions);
- database: a bare ``CREATE DATABASE ... TEMPLATE`` of the migrated template.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from camcount.config import Settings
from camcount.db import migrations as ledger
from camcount.db.pools import Database
from camcount.runtime import open_database
from camcount.tenancy.bootstrap import initialize
from camcount.tenancy.partitions import PROVISIONED_PARTITIONS_AHEAD, ensure_partitions
from camcount.tenancy.placements import template_database_name
from camcount.tenancy.provisioning import TenantRequest, create_tenant

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGETS_MS = {"pooled": 2.0, "schema": 50.0, "database": 500.0}


def drop_bench_databases(url: str, main: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s", (main, main + r"\_%"))]  # fmt: skip
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def timed(count: int, one: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(count):
        start = time.perf_counter()
        await one(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def camcount_samples(db: Database, placement: str, count: int) -> list[float]:
    run = uuid.uuid4().hex[:6]

    async def one(i: int) -> None:
        request = TenantRequest.parse(f"b{run}-{placement[:2]}-{i}", name=f"Bench {i}", placement=placement)
        await create_tenant(db, request, actor="bench")

    return await timed(count, one)


async def bare_samples(db: Database, placement: str, count: int) -> list[float]:
    tenant_sql = b"".join(m.sql.encode() for m in ledger.load_migrations(ledger.TENANT_TREE))
    run = uuid.uuid4().hex[:6]

    async def pooled(i: int) -> None:
        async with db.owner() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO control.tenants (slug, name, plan, placement, schema_name) "
                "VALUES (%s, 'bare', 'standard', 'pooled', 'pooled') RETURNING id", (f"bare{run}-{i}",))  # fmt: skip
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO control.tenant_limits (tenant_id, resource, limit_value, reset_period) "
                "SELECT %s, resource, limit_value, reset_period FROM control.plan_limits WHERE plan = 'standard'",
                (row[0],))  # fmt: skip

    async def schema(i: int) -> None:
        name = f"bare_{run}_{i}"
        async with db.owner() as conn, conn.transaction():
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            await conn.execute("SELECT set_config('search_path', %s, true)", (name,))
            await conn.execute(tenant_sql)
            await ensure_partitions(conn, name, ahead=PROVISIONED_PARTITIONS_AHEAD)

    async def database(i: int) -> None:
        name = f"{db.main_dbname}_bare{run}{i}"
        async with db.login("postgres") as conn:
            await conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database_name(db.main_dbname))))  # fmt: skip

    return await timed(count, {"pooled": pooled, "schema": schema, "database": database}[placement])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="tenants per placement (default 200)")
    parser.add_argument("--url", default=os.environ.get("CAMCOUNT_BENCH_URL", DEFAULT_URL))
    args = parser.parse_args()
    main_db = "camcount_bench_prov"
    drop_bench_databases(args.url, main_db)
    settings = Settings(
        database_url=SecretStr(make_conninfo(args.url, dbname=main_db)), home=".camcount-bench"
    )
    print(f"provisioning {args.count} tenants per placement; PostgreSQL at {args.url.split('@')[-1]}")
    print(
        f"{'placement':<10} {'camcount p50':>13} {'p99':>8} {'bare p50':>9} {'p99':>8} {'ratio p50':>10} {'target':>8}"
    )
    try:
        async with open_database(settings, load=False) as db:
            await initialize(db)
            for placement in ("pooled", "schema", "database"):
                # Interleave halves so drift on a shared machine hits both sides alike.
                half = args.count // 2
                ours = await camcount_samples(db, placement, half)
                bare = await bare_samples(db, placement, half)
                ours += await camcount_samples(db, placement, args.count - half)
                bare += await bare_samples(db, placement, args.count - half)
                p50, p99 = summary(ours)
                b50, b99 = summary(bare)
                verdict = "ok" if p50 <= TARGETS_MS[placement] else "MISSED"
                print(f"{placement:<10} {p50:>10.2f} ms {p99:>5.1f} ms {b50:>6.2f} ms {b99:>5.1f} ms "
                      f"{p50 / b50:>10.2f} {TARGETS_MS[placement]:>5.0f} ms {verdict}")  # fmt: skip
    finally:
        drop_bench_databases(args.url, main_db)


if __name__ == "__main__":
    asyncio.run(main())
