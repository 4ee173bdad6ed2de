"""Shared pieces of the counting benchmarks (``bench.ingest``, ``bench.dashboard``).

Each benchmark works in a dedicated database on the machine's PostgreSQL (``CAMCOUNT_BENCH_URL``,
default ``postgresql://postgres@127.0.0.1:5432/postgres``), initialised by camcount itself, and
never touches the tests' or anyone's databases. The API runs as a real uvicorn process.
"""

from __future__ import annotations

import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from camcount.accounts import device_keys
from camcount.config import Settings
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.limits.plans import set_tenant_limit
from camcount.runtime import open_database
from camcount.secretbox import generate_key
from camcount.tenancy.bootstrap import initialize
from camcount.tenancy.models import Tenant

SERVER_URL = os.environ.get("CAMCOUNT_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = Path(__file__).with_name("RESULTS.md")
JWT_SECRET = secrets.token_urlsafe(32)
SECRET_KEY = generate_key()


def bench_settings(dbname: str, home: Path) -> Settings:
    return Settings(
        database_url=SecretStr(make_conninfo(SERVER_URL, dbname=dbname)),
        home=home,
        secret_key=SecretStr(SECRET_KEY),
        jwt_secret=SecretStr(JWT_SECRET),
        pool_min_size=1,
        pool_max_size=8,
    )


def database_exists(dbname: str) -> bool:
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None


def drop_database(dbname: str) -> None:
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s", (dbname, dbname + r"\_%")
        )]  # fmt: skip
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@asynccontextmanager
async def bench_database(settings: Settings, dbname: str, *, fresh: bool) -> AsyncIterator[Database]:
    if fresh:
        drop_database(dbname)
    async with open_database(settings, load=False) as db:
        if fresh:
            await initialize(db)
        yield db


async def add_site_and_cameras(
    db: Database, tenant: Tenant, timezone: str, cameras: int, *, site: str = "Bench site"
) -> list[int]:
    """The ids of ``cameras`` new cameras in a new site named ``site``."""
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(
            "INSERT INTO sites (tenant_id, name, timezone) VALUES (%s, %s, %s) RETURNING id",
            (tenant.id, site, timezone),
        )
        site_id = (await cur.fetchone() or [0])[0]
        ids = []
        for index in range(cameras):
            cur = await conn.execute(
                "INSERT INTO cameras (tenant_id, site_id, name) VALUES (%s, %s, %s) RETURNING id",
                (tenant.id, site_id, f"cam {index}"),
            )
            ids.append(int((await cur.fetchone() or [0])[0]))
    return ids


async def add_device_key(db: Database, tenant: Tenant, *, site_id: int | None = None) -> str:
    """A device key stored as the keys API stores one: unrestricted, or for one site."""
    key = device_keys.generate()
    async with tenant_transaction(db, tenant.location) as conn:
        await conn.execute(
            "INSERT INTO api_keys (tenant_id, name, prefix, key_hash, site_id) VALUES (%s, %s, %s, %s, %s)",
            (tenant.id, f"bench {key.prefix}", key.prefix, key.key_hash, site_id),
        )
    async with db.owner() as conn:
        await conn.execute(
            "INSERT INTO control.device_key_directory (prefix, tenant_id) VALUES (%s, %s)",
            (key.prefix, tenant.id),
        )
        await conn.commit()
    return key.plaintext


async def lift_limits(db: Database, tenant: Tenant) -> None:
    """Raise the tenant's rate limits and events quota out of the benchmark's way."""
    for resource in (
        "requests_per_second",
        "device_requests_per_second",
        "events_per_month",
        "api_calls_per_day",
    ):
        await set_tenant_limit(db, tenant.slug, resource, 10_000_000, actor="bench")


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(settings: Settings, *, pythonpath: str | None = None, workers: int = 1) -> Iterator[str]:
    """``camcount serve`` (uvicorn with uvloop and camcount's httptools protocol) on a free port, limits on.

    The server users run: its protocol writes each answer in one piece and it trusts no proxy
    headers. ``pythonpath``: import camcount from there (another checkout's ``src``) instead of
    this tree.
    """
    port = free_port()
    assert settings.database_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMCOUNT_")}
    env.update(
        CAMCOUNT_DATABASE_URL=settings.database_url.get_secret_value(),
        CAMCOUNT_SECRET_KEY=SECRET_KEY,
        CAMCOUNT_JWT_SECRET=JWT_SECRET,
        CAMCOUNT_HOME=str(settings.home),
        CAMCOUNT_BENCH_ENDPOINTS="true",
    )
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("camcount")), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", text)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    with psycopg.connect(SERVER_URL) as conn:
        version = str((conn.execute("SHOW server_version").fetchone() or ["?"])[0])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({cpu}), PostgreSQL {version}, Python {platform.python_version()}; "
            f"load average at the start {load}")  # fmt: skip


# In a section of bench/RESULTS.md, what follows this line is written by hand (what a session
# measured and why) and stays when a benchmark rewrites the section's figures above it.
NOTES_MARKER = "<!-- notes: kept when a benchmark rewrites this section -->"


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of bench/RESULTS.md, leaving the others alone.

    The section's notes (from :data:`NOTES_MARKER` on) are kept below the new figures.
    """
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pattern.search(text)
    notes = ""
    if found and NOTES_MARKER in found.group(0):
        notes = "\n" + found.group(0)[found.group(0).index(NOTES_MARKER) :].strip() + "\n"
    section = f"## {title}\n\n{body.strip()}\n{notes}"
    if found:
        text = pattern.sub(lambda _m: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
