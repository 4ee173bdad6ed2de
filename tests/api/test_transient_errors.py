"""A database briefly out of reach is a 503 with Retry-After, not a 500; a bug is still a 500.

The errors are real PostgreSQL errors, raised by a small app that carries camcount's handlers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from psycopg import AsyncConnection
from psycopg_pool import PoolTimeout

from camcount.api.errors import install_error_handlers
from camcount.api.problems import PROBLEM_MEDIA_TYPE
from camcount.db.pools import Database


async def _plan_changed(conn: AsyncConnection) -> None:
    await conn.execute("CREATE TEMP TABLE plan_probe (name text)")
    await conn.execute("PREPARE probe AS SELECT name FROM plan_probe")
    await conn.execute("ALTER TABLE plan_probe ALTER COLUMN name TYPE varchar(10)")
    await conn.execute("EXECUTE probe")  # a migration changed the type under a prepared plan


async def _unreachable(conn: AsyncConnection) -> None:
    await AsyncConnection.connect("host=127.0.0.1 port=1 connect_timeout=2")  # nothing listens there


async def _timed_out(conn: AsyncConnection) -> None:
    await conn.execute("SET statement_timeout = 10")
    await conn.execute("SELECT pg_sleep(1)")


async def _not_supported(conn: AsyncConnection) -> None:
    await conn.execute("CREATE TEMP TABLE t (a int)")
    await conn.execute("SELECT count(*) FROM t FOR UPDATE")  # FeatureNotSupported too: a bug, not transient


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    failures = {
        "plan": _plan_changed,
        "unreachable": _unreachable,
        "timeout": _timed_out,
        "unsupported": _not_supported,
    }

    @app.get("/fail/{kind}")
    async def fail(kind: str) -> None:
        if kind == "pool":
            raise PoolTimeout("couldn't get a connection after 30.00 sec")
        # A connection of its own: the failures leave session state (a temporary table, a prepared
        # statement, a timeout) that must not reach a pooled connection other tests use.
        conn = await AsyncConnection.connect(db.default_server.owner_url, autocommit=True)
        try:
            await failures[kind](conn)
        finally:
            await conn.close()

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("kind", ["plan", "unreachable", "timeout", "pool"])
async def test_a_transient_database_failure_asks_the_client_to_retry(
    client: httpx.AsyncClient, kind: str
) -> None:
    response = await client.get(f"/fail/{kind}")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == "urn:camcount:problem:temporarily-unavailable"
    assert "retry" in problem["detail"]
    for internal in ("plan_probe", "pg_", "SELECT", "cached plan", "sec", "statement"):
        assert internal not in response.text


async def test_an_unsupported_statement_is_still_an_internal_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/fail/unsupported")
    assert response.status_code == 500
    assert "retry-after" not in response.headers
    assert "FOR UPDATE" not in response.text
