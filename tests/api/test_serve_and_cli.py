"""`camcount serve` as a real process, and the CLI commands of the API: users and operator tokens."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from camcount.db.pools import Database
from tests.fixtures.serve import free_port
from tests.fixtures.tenants import TenantFactory

CAMCOUNT = str(Path(sys.executable).with_name("camcount"))


async def test_camcount_serve_answers_healthz_and_readyz(env_for_cli: dict[str, str], db: Database) -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 (a server for the whole test)
        [CAMCOUNT, "serve", "--port", str(port)],
        env=env_for_cli,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "camcount serve did not start"
                await asyncio.sleep(0.2)
        assert health.json() == {"status": "ok"}
        ready = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["migrations_current"] is True
        docs = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_user_create_and_operator_token_from_the_cli_work_over_http(
    env_for_cli: dict[str, str], make_tenant: TenantFactory, api: httpx.AsyncClient
) -> None:
    tenant = await make_tenant("pooled")
    created = await asyncio.to_thread(
        subprocess.run,

        [CAMCOUNT, "user", "create", tenant.slug, "boss", "--email", "boss@example.com", "--role", "owner",
         "--password-stdin"],
        input="a long enough password\n", env=env_for_cli, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    login = await api.post(
        f"/t/{tenant.slug}/auth/token", data={"username": "boss", "password": "a long enough password"}
    )
    assert login.status_code == 200
    assert login.json()["token_type"] == "bearer"

    name = f"ops-{uuid.uuid4().hex[:8]}"
    issued = await asyncio.to_thread(
        subprocess.run,
        [CAMCOUNT, "operator", "token", "create", name],
        env=env_for_cli,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("op_")
    headers = {"Authorization": f"Bearer {token}"}
    shown = await api.get(f"/admin/tenants/{tenant.slug}", headers=headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["slug"] == tenant.slug
    assert (await api.get(f"/admin/tenants/{tenant.slug}", headers=login.json() and {
        "Authorization": f"Bearer {login.json()['access_token']}"})).status_code == 401  # fmt: skip
    suspended = await api.post(f"/admin/tenants/{tenant.slug}/suspend", headers=headers)
    assert suspended.json()["status"] == "suspended"
    refused = await api.get(
        f"/t/{tenant.slug}/sites", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert refused.status_code == 403  # the admin route invalidated the cached status at once
    revoked = await asyncio.to_thread(
        subprocess.run,
        [CAMCOUNT, "operator", "token", "revoke", name],
        env=env_for_cli,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr


def _serve_on(env: dict[str, str], dbname: str) -> subprocess.CompletedProcess[str]:
    """``camcount serve`` against database ``dbname`` of the test server, expected to refuse at once."""
    url = make_conninfo(env["CAMCOUNT_DATABASE_URL"], dbname=dbname)
    return subprocess.run(
        [CAMCOUNT, "serve", "--port", str(free_port())], env={**env, "CAMCOUNT_DATABASE_URL": url},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@contextmanager
def _scratch_database(env: dict[str, str], name: str, *, create: bool = True) -> Iterator[None]:
    with psycopg.connect(env["CAMCOUNT_DATABASE_URL"], autocommit=True) as conn:
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield
    finally:
        with psycopg.connect(env["CAMCOUNT_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_camcount_serve_says_what_to_do_when_the_database_is_missing_or_not_initialised(
    env_for_cli: dict[str, str], db: Database
) -> None:
    """One clear line and exit code 5 instead of uvicorn's start-up traceback."""
    missing = _serve_on(env_for_cli, f"cc_missing_{uuid.uuid4().hex[:8]}")
    assert missing.returncode == 5, missing.stderr
    assert "does not exist; run `camcount init` first" in missing.stderr
    assert "Traceback" not in missing.stderr

    empty = f"cc_empty_{uuid.uuid4().hex[:8]}"
    with _scratch_database(env_for_cli, empty):
        uninitialised = _serve_on(env_for_cli, empty)
    assert uninitialised.returncode == 5, uninitialised.stderr
    assert "run `camcount init` first" in uninitialised.stderr
    assert "Traceback" not in uninitialised.stderr


def test_camcount_serve_refuses_a_database_whose_migrations_are_not_current(
    env_for_cli: dict[str, str], db: Database
) -> None:
    name = f"cc_behind_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(env_for_cli["CAMCOUNT_DATABASE_URL"], dbname=name)
    with _scratch_database(env_for_cli, name, create=False):  # `camcount init` creates it
        init = subprocess.run([CAMCOUNT, "init"], env={**env_for_cli, "CAMCOUNT_DATABASE_URL": url},
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert init.returncode == 0, init.stderr
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM camcount_meta.migrations WHERE (schema_name, version) IN"
                         " (SELECT schema_name, max(version) FROM camcount_meta.migrations"
                         "  WHERE schema_name = 'control' GROUP BY 1)")  # fmt: skip
        behind = _serve_on(env_for_cli, name)
    assert behind.returncode == 5, behind.stderr
    assert "migrations are not current (1 pending, first control/" in behind.stderr
    assert "run `camcount migrate` first" in behind.stderr and "Traceback" not in behind.stderr
