"""``camcount migrate`` over many schema tenants, against the naive per-schema loop (issue 2).

Run: ``.venv/bin/python -m bench.migrate [--tenants 1000] [--url URL]``. Uses its own database
(``camcount_bench_mig``, dropped first and last). Measured in one run:
- a no-op ``camcount migrate`` (the real command, as a subprocess, and the runner in-process),
  against the django-tenants-style baseline: visit every schema and read its ledger in turn;
- a migration adding one column to every tenant, against a bare serial loop of the same
  ``ALTER TABLE`` over the same schemas (no ledger, no parallelism).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from bench.provisioning import DEFAULT_URL, drop_bench_databases
from camcount.config import Settings
from camcount.db.pools import Database
from camcount.runtime import open_database
from camcount.tenancy.bootstrap import initialize, migrate_all
from camcount.tenancy.provisioning import TenantRequest, create_tenant

CAMCOUNT = str(Path(sys.executable).with_name("camcount"))
TARGET_NOOP_S = 10.0
TARGET_COLUMN_S = 60.0


async def provision(db: Database, count: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    semaphore = asyncio.Semaphore(4)

    async def one(i: int) -> str:
        async with semaphore:
            request = TenantRequest.parse(f"m{run}-{i}", name=f"Tenant {i}", placement="schema")
            return (await create_tenant(db, request, actor="bench")).tenant.schema_name

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def naive_noop(url: str, schemas: list[str]) -> float:
    """Visit each schema and read its applied versions, one after another."""
    start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
            conn.execute(
                "SELECT version FROM camcount_meta.migrations WHERE schema_name = %s", (schema,)
            ).fetchall()
    return time.perf_counter() - start


def naive_alter(url: str, schemas: list[str], column: str) -> float:
    start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} text").format(
                sql.Identifier(schema, "cameras"), sql.Identifier(column)))  # fmt: skip
    return time.perf_counter() - start


def cli_noop(env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([CAMCOUNT, "migrate"], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or "up to date" not in result.stdout:
        raise SystemExit(f"camcount migrate failed: {result.stdout}{result.stderr}")
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--url", default=os.environ.get("CAMCOUNT_BENCH_URL", DEFAULT_URL))
    args = parser.parse_args()
    main_db = "camcount_bench_mig"
    owner_url = make_conninfo(args.url, dbname=main_db)
    drop_bench_databases(args.url, main_db)
    settings = Settings(database_url=SecretStr(owner_url), home=".camcount-bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMCOUNT_")}
    env["CAMCOUNT_DATABASE_URL"] = owner_url
    try:
        async with open_database(settings, load=False) as db:
            await initialize(db)
            start = time.perf_counter()
            schemas = await provision(db, args.tenants)
            print(f"provisioned {len(schemas)} schema tenants in {time.perf_counter() - start:.1f} s")

            cli = cli_noop(env)
            start = time.perf_counter()
            assert await migrate_all(db) == []
            in_process = time.perf_counter() - start
            naive = naive_noop(owner_url, schemas)
            print(f"no-op migrate:   camcount migrate (CLI) {cli:6.2f} s | runner in-process {in_process:6.2f} s | "
                  f"naive per-schema loop {naive:6.2f} s | ratio CLI/naive {cli / naive:5.2f} | "
                  f"target <= {TARGET_NOOP_S:.0f} s {'ok' if cli <= TARGET_NOOP_S else 'MISSED'}")  # fmt: skip

            with tempfile.TemporaryDirectory() as folder:
                Path(folder, "0900_bench_column.sql").write_text(
                    "ALTER TABLE cameras ADD COLUMN bench_note text;\n"
                )
                start = time.perf_counter()
                results = await migrate_all(db, extra_tenant_dirs=[Path(folder)])
                ours = time.perf_counter() - start
            failed = [r for r in results if r.error]
            bare = naive_alter(owner_url, schemas, "bench_bare")
            print(f"add one column:  camcount migrate {ours:6.2f} s over {len(results)} targets ({len(failed)} failed) | "
                  f"bare serial ALTER loop {bare:6.2f} s | ratio {ours / bare:5.2f} | "
                  f"target <= {TARGET_COLUMN_S:.0f} s {'ok' if ours <= TARGET_COLUMN_S and not failed else 'MISSED'}")  # fmt: skip
    finally:
        drop_bench_databases(args.url, main_db)


if __name__ == "__main__":
    asyncio.run(main())
