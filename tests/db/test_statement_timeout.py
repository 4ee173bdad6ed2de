"""An HTTP request's tenant transactions cancel a runaway statement; jobs and the owner are not bounded."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from psycopg import errors
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from camcount.api.middleware import RequestContextMiddleware
from camcount.config import Settings
from camcount.db.pools import Database
from camcount.db.scope import owner_tenant_transaction, statement_timeout_ms, tenant_fetch, tenant_transaction
from camcount.tenancy.models import Tenant

SLOW = "SELECT pg_sleep(0.4)"


@pytest.fixture
def in_a_request() -> Iterator[None]:
    token = statement_timeout_ms.set(100)  # what RequestContextMiddleware sets for a request
    yield
    statement_timeout_ms.reset(token)


@pytest.mark.usefixtures("in_a_request")
async def test_a_request_statement_that_runs_too_long_is_cancelled(db: Database, tenant_a: Tenant) -> None:
    with pytest.raises(errors.QueryCanceled):
        await tenant_fetch(db, tenant_a.location, SLOW, ())
    with pytest.raises(errors.QueryCanceled):
        async with tenant_transaction(db, tenant_a.location) as conn:
            await conn.execute(SLOW)
    assert await tenant_fetch(db, tenant_a.location, "SELECT count(*) FROM sites", ()) == [(0,)]


@pytest.mark.usefixtures("in_a_request")
async def test_the_owners_work_is_not_bounded(db: Database, tenant_a: Tenant) -> None:
    async with owner_tenant_transaction(db, tenant_a.location) as conn:  # erasing a tenant from /admin
        await conn.execute(SLOW)


async def test_outside_a_request_nothing_is_bounded_and_nothing_stays_on_the_connection(
    db: Database, settings: Settings, tenant_a: Tenant
) -> None:
    single = Database(settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1}),
                      db.default_server.owner_url)  # fmt: skip
    try:
        token = statement_timeout_ms.set(100)
        await tenant_fetch(single, tenant_a.location, "SELECT 1", ())  # bounded, on the one connection
        statement_timeout_ms.reset(token)
        assert await tenant_fetch(single, tenant_a.location, SLOW, ()) == [("",)]  # a job's statement
        pool = await single.app_pool()
        async with pool.connection() as conn:
            cur = await conn.execute("SHOW statement_timeout")
            assert await cur.fetchone() == ("0",)  # the request's limit ended with its transaction
    finally:
        await single.close()


async def test_the_middleware_bounds_each_request_with_the_setting() -> None:
    async def seen(request: Request) -> JSONResponse:
        return JSONResponse({"timeout": statement_timeout_ms.get()})

    app = RequestContextMiddleware(Starlette(routes=[Route("/", seen)]), max_body_bytes=1024,
                                   statement_timeout_ms=1234)  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/")).json() == {"timeout": 1234}
    assert statement_timeout_ms.get() is None
    assert Settings.model_fields["request_statement_timeout_ms"].default == 15_000
