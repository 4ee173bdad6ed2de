"""Shared set-up of the limits benchmarks: a database, tenants, tokens and `camcount serve` processes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from camcount.accounts.roles import Role
from camcount.accounts.tokens import TokenService
from camcount.accounts.users import UserRequest, create_user
from camcount.config import Settings
from camcount.counting.cameras import CameraFields, create_camera
from camcount.counting.sites import SiteFields, create_site
from camcount.limits.plans import set_tenant_limit
from camcount.runtime import open_database
from camcount.secretbox import generate_key
from camcount.tenancy.bootstrap import initialize
from camcount.tenancy.provisioning import TenantRequest, create_tenant

SERVER_URL = os.environ.get("CAMCOUNT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CAMCOUNT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RESULTS = Path(__file__).with_name("RESULTS.md")
JWT_SECRET = "bench-jwt-secret-limits-0123456789abcdef01234"  # noqa: S105 (benchmark only)
CAMCOUNT = str(Path(sys.executable).with_name("camcount"))


@dataclass(frozen=True)
class BenchTenant:
    slug: str
    camera_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def reset_database(dbname: str) -> None:
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (dbname + "%",))
        ]
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def provision(
    settings: Settings, slugs: list[str], limits: dict[str, dict[str, int]]
) -> list[BenchTenant]:
    """Pooled tenants with a viewer, a site and a camera; ``limits[slug]`` overrides their limits."""
    out = []
    async with open_database(settings, load=False) as db:
        await initialize(db)
        for slug in slugs:
            tenant = (await create_tenant(db, TenantRequest.parse(slug, name=slug), actor="bench")).tenant
            user = await create_user(
                db, tenant, UserRequest.parse(username="bench", email="bench@example.com", role=Role.VIEWER,
                                              password="bench-password"), actor="bench",  # noqa: S106
            )  # fmt: skip
            for resource, value in limits.get(slug, {}).items():
                await set_tenant_limit(db, slug, resource, value, actor="bench")
            site = await create_site(db, tenant, SiteFields.parse(name="HQ", timezone="Europe/Paris"))
            camera = await create_camera(db, tenant, CameraFields.parse(site_id=site.id, name="Door"))
            token = TokenService.from_settings(settings).issue(
                tenant_id=tenant.id, user_id=user.id, role=user.role
            )
            out.append(BenchTenant(slug, camera.id, token))
    return out


def settings_for(dbname: str) -> Settings:
    home = Path(tempfile.mkdtemp(prefix="camcount-bench-"))
    return Settings(
        database_url=make_conninfo(SERVER_URL, dbname=dbname), home=home, secret_key=generate_key(),
        jwt_secret=JWT_SECRET,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(settings: Settings, **extra_env: str) -> Iterator[str]:
    """A real `camcount serve` (one uvicorn worker) on a free port; yields its base URL."""
    assert settings.database_url is not None
    assert settings.secret_key is not None
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMCOUNT_")}
    env.update(
        CAMCOUNT_DATABASE_URL=settings.database_url.get_secret_value(), CAMCOUNT_HOME=str(settings.home),
        CAMCOUNT_SECRET_KEY=settings.secret_key.get_secret_value(), CAMCOUNT_JWT_SECRET=JWT_SECRET,
        CAMCOUNT_BENCH_ENDPOINTS="1", **extra_env,
    )  # fmt: skip
    process = subprocess.Popen([CAMCOUNT, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str], *, allow_errors: bool = False
) -> dict[str, float]:
    """Requests per second, and latency percentiles in ms (wrk --latency)."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors and not allow_errors:
        raise SystemExit(f"{url} answered {errors.group(1)} errors:\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rps, output
    result = {"rps": float(rps.group(1)), "non2xx": float(errors.group(1)) if errors else 0.0}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            result[f"p{pct}"] = float(m.group(1)) * scale
    return result


def record(title: str, body: str) -> None:
    """Write (or replace) the subsection ``### title`` inside ``## Quotas and rate limits``."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    head = "## Quotas and rate limits"
    if head not in text:
        text = (
            text.rstrip("\n")
            + f"\n\n{head}\n\nMachine: 2 cores shared by the client, the server and PostgreSQL (and whatever else runs: see the load average), so figures move between runs; both sides of each ratio are measured in the same run, alternating.\n"
        )
    start = text.index(head)
    end_match = re.search(r"\n## ", text[start + len(head) :])
    end = start + len(head) + end_match.start() if end_match else len(text)
    section = text[start:end]
    sub = f"### {title}\n\n{body.rstrip()}\n"
    pattern = re.compile(rf"### {re.escape(title)}\n.*?(?=\n### |\Z)", re.S)
    section = pattern.sub(sub, section) if pattern.search(section) else section.rstrip("\n") + "\n\n" + sub
    RESULTS.write_text(text[:start] + section.rstrip("\n") + "\n" + text[end:])
