"""Redis is an accelerator, never a dependency of an answer.

A private redis-server (so the shared test Redis is never disturbed) is stopped, then frozen, under a
running app: requests are still answered from PostgreSQL, writes still apply, and a frozen Redis
costs one short timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from camcount.app import create_app
from camcount.cache import REDIS_TIMEOUT_SECONDS, RedisCache
from camcount.config import Settings
from camcount.db.pools import Database
from tests.fixtures.api import ApiTenantFactory, add_camera
from tests.fixtures.serve import free_port


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while (
        subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG"
    ):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield RedisServer(process, port)
    process.send_signal(signal.SIGCONT)
    process.kill()
    process.wait()


@pytest.fixture
async def redis_app(
    api_settings: Settings, db: Database, redis_server: RedisServer
) -> AsyncIterator[FastAPI]:
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    app = create_app(api_settings.model_copy(update={"redis_url": SecretStr(url), "pool_max_size": 3}))
    async with app.router.lifespan_context(app):
        yield app


async def test_requests_are_served_when_redis_stops_or_freezes(
    redis_app: FastAPI,
    redis_server: RedisServer,
    api: httpx.AsyncClient,
    make_api_tenant: ApiTenantFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await make_api_tenant()
    camera = await add_camera(api, tenant)
    transport = httpx.ASGITransport(app=redis_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        url = tenant.url(f"/cameras/{camera}")
        assert (await client.get(url, headers=tenant.headers)).status_code == 200  # cached in Redis now

        redis_server.process.send_signal(signal.SIGSTOP)  # frozen: connections stay open, nothing answers
        started = time.monotonic()
        for _ in range(10):
            response = await client.get(url, headers=tenant.headers)
            assert response.status_code == 200, response.text
        # One timeout, then the breaker keeps Redis out of the way (not 10 requests x 2+ lookups).
        assert time.monotonic() - started < 4 * REDIS_TIMEOUT_SECONDS

        redis_server.process.send_signal(signal.SIGCONT)
        redis_server.process.kill()  # gone
        redis_server.process.wait()
        await asyncio.sleep(2.1)  # past the breaker's pause: Redis is asked, and refuses
        renamed = await client.patch(url, json={"name": "Gate"}, headers=tenant.headers)
        assert renamed.status_code == 200, renamed.text
        response = await client.get(url, headers=tenant.headers)
        assert response.status_code == 200 and response.json()["name"] == "Gate"
        login = await client.post(
            tenant.url("/auth/token"), data={"username": tenant.username, "password": tenant.password}
        )
        assert login.status_code == 200, login.text
    assert "Redis unavailable" in caplog.text


async def test_an_unreachable_redis_is_a_miss_and_an_invalidation_still_applies_here(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    dropped: list[int | None] = []
    cache.on_invalidate(dropped.append)
    with caplog.at_level(logging.WARNING, logger="camcount.cache"):
        await cache.set(7, "tenant", {"id": 7}, ttl=5)
        assert await cache.get(7, "tenant") is None
        await cache.delete(7, "tenant")
        await cache.invalidate_tenant(7)
    await cache.close()
    assert dropped == [7]
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # at most one warning per interval, however many calls failed
