"""The cache really used: tenant records and camera answers under tenant-prefixed keys, dropped on write.

With Redis (``CAMCOUNT_REDIS_URL``; the test Redis is ``CAMCOUNT_TEST_REDIS_URL``, default db 11 on
127.0.0.1): two app instances share it, and a status change made through one (``/admin`` suspend)
applies in the other within a few seconds, although its own TTL is 30 s: the invalidation is
broadcast. Keys live under ``camcount:{main database}:`` so concurrent runs never collide. Without
Redis: the in-process default.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import SecretStr

from camcount.app import create_app
from camcount.cache import MemoryCache, RedisCache
from camcount.config import Settings
from camcount.db.pools import Database
from tests.fixtures.api import ApiTenantFactory, add_camera

REDIS_URL = os.environ.get("CAMCOUNT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture(scope="module")
async def redis_apps(api_settings: Settings, db: Database) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two app instances (as two API processes would be) sharing one Redis, with a long TTL."""
    settings = api_settings.model_copy(
        update={"redis_url": SecretStr(REDIS_URL), "tenant_cache_seconds": 30.0, "pool_max_size": 3}
    )
    first, second = create_app(settings), create_app(settings)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        yield first, second


@pytest.fixture(scope="module")
async def memory_app(api_settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    """The in-process default, with a TTL long enough that only writes can drop an entry."""
    app = create_app(api_settings.model_copy(update={"tenant_cache_seconds": 30.0, "pool_max_size": 3}))
    async with app.router.lifespan_context(app):
        yield app


async def _stored(client: aioredis.Redis, key: str) -> Any:
    raw = await client.get(key)
    assert raw is not None, key
    return json.loads(raw)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _eventually(check: Any, seconds: float = 5.0) -> float:
    """Polls ``check()`` until true; returns how long it took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_with_redis_tenant_records_and_cameras_live_under_tenant_prefixed_keys_and_writes_drop_them(
    redis_apps: tuple[FastAPI, FastAPI],
    redis_client: aioredis.Redis,
    api: httpx.AsyncClient,
    make_api_tenant: ApiTenantFactory,
    placement: str,
) -> None:
    first, second = redis_apps
    cache = first.state.cache
    assert isinstance(cache, RedisCache)
    prefix = f"camcount:{first.state.db.main_dbname}:"
    assert cache.prefix == prefix
    a, b = await asyncio.gather(make_api_tenant(placement), make_api_tenant(placement))
    camera_a, camera_b = await add_camera(api, a), await add_camera(api, b)
    async with _client(first) as one, _client(second) as two:
        assert (await one.get(a.url(f"/cameras/{camera_a}"), headers=a.headers)).status_code == 200
        assert (await one.get(b.url(f"/cameras/{camera_b}"), headers=b.headers)).status_code == 200
        tenant_key = f"{prefix}t:{a.tenant.id}:tenant"
        camera_key = f"{prefix}t:{a.tenant.id}:camera:{camera_a}"
        stored = await _stored(redis_client, tenant_key)
        assert stored["slug"] == a.slug and stored["status"] == "active"
        assert "password" not in json.dumps(stored) and "secret" not in json.dumps(stored)
        assert await _stored(redis_client, f"{prefix}g:tenant-slug:{a.slug}") == a.tenant.id
        assert json.loads((await _stored(redis_client, camera_key))[1])["name"] == "Door"
        assert 0 < await redis_client.pttl(camera_key) <= 30_000

        # A write through the second instance drops the shared entry: the first serves the change.
        renamed = await two.patch(a.url(f"/cameras/{camera_a}"), json={"name": "Gate"}, headers=a.headers)
        assert renamed.status_code == 200, renamed.text
        assert await redis_client.exists(camera_key) == 0
        assert (await one.get(a.url(f"/cameras/{camera_a}"), headers=a.headers)).json()["name"] == "Gate"

        # Invalidating A drops A's keys only.
        await cache.invalidate_tenant(a.tenant.id)
        assert await redis_client.exists(tenant_key, camera_key) == 0
        assert await redis_client.exists(f"{prefix}t:{b.tenant.id}:tenant") == 1


async def test_with_redis_a_suspension_through_one_instance_applies_in_the_other_within_seconds(
    redis_apps: tuple[FastAPI, FastAPI],
    redis_client: aioredis.Redis,
    api: httpx.AsyncClient,
    make_api_tenant: ApiTenantFactory,
    operator_headers: dict[str, str],
) -> None:
    first, second = redis_apps
    a = await make_api_tenant("pooled")
    camera = await add_camera(api, a)
    url = a.url(f"/cameras/{camera}")
    async with _client(first) as one, _client(second) as two:
        # Both instances hold A in their own memory (TTL 30 s) and in Redis.
        assert (await one.get(url, headers=a.headers)).status_code == 200
        assert (await two.get(url, headers=a.headers)).status_code == 200

        suspended = await one.post(f"/admin/tenants/{a.slug}/suspend", headers=operator_headers)
        assert suspended.status_code == 200, suspended.text

        async def refused_by_second() -> bool:
            return (await two.get(url, headers=a.headers)).status_code == 403

        assert await _eventually(refused_by_second, seconds=3.0) < 3.0
        answer = await two.get(url, headers=a.headers)
        assert answer.json()["type"].endswith("tenant-suspended")

        activated = await two.post(f"/admin/tenants/{a.slug}/activate", headers=operator_headers)
        assert activated.status_code == 200

        async def served_by_first() -> bool:
            return (await one.get(url, headers=a.headers)).status_code == 200

        await _eventually(served_by_first, seconds=3.0)
        stored = await _stored(redis_client, f"camcount:{first.state.db.main_dbname}:t:{a.tenant.id}:tenant")
        assert stored["status"] == "active"


async def test_with_redis_a_suspension_from_the_command_line_applies_in_running_api_processes(
    redis_apps: tuple[FastAPI, FastAPI],
    api: httpx.AsyncClient,
    make_api_tenant: ApiTenantFactory,
    env_for_cli: dict[str, str],
) -> None:
    """The CLI announces its change on the Redis channel as the /admin routes do: the instances
    refuse the tenant within seconds although they hold it for 30 s."""
    first, second = redis_apps
    a = await make_api_tenant("pooled")
    camera = await add_camera(api, a)
    url = a.url(f"/cameras/{camera}")
    command = str(Path(sys.executable).with_name("camcount"))
    env = {**env_for_cli, "CAMCOUNT_REDIS_URL": REDIS_URL}
    async with _client(first) as one, _client(second) as two:
        assert (await one.get(url, headers=a.headers)).status_code == 200
        assert (await two.get(url, headers=a.headers)).status_code == 200

        done = await asyncio.to_thread(
            subprocess.run, [command, "tenant", "suspend", a.slug], env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

        async def refused_by_both() -> bool:
            answers = [await c.get(url, headers=a.headers) for c in (one, two)]
            return [r.status_code for r in answers] == [403, 403]

        assert await _eventually(refused_by_both, seconds=3.0) < 3.0


async def test_in_process_default_caches_under_tenant_prefixed_keys_and_writes_drop_them(
    memory_app: FastAPI, api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    cache = memory_app.state.cache
    assert isinstance(cache, MemoryCache)
    a, b = await asyncio.gather(make_api_tenant("pooled"), make_api_tenant("pooled"))
    camera_a, camera_b = await add_camera(api, a), await add_camera(api, b)
    async with _client(memory_app) as mem:
        first = await mem.get(a.url(f"/cameras/{camera_a}"), headers=a.headers)
        assert first.status_code == 200
        assert (await mem.get(b.url(f"/cameras/{camera_b}"), headers=b.headers)).status_code == 200
        shared = await cache.get(a.tenant.id, "tenant")
        assert shared is not None and shared["slug"] == a.slug
        assert await cache.get(None, f"tenant-slug:{a.slug}") == a.tenant.id
        assert await cache.get(a.tenant.id, f"camera:{camera_a}") == [first.json()["site_id"], first.text]
        # B's camera id under A's prefix is nothing: every key carries its tenant.
        assert await cache.get(a.tenant.id, f"camera:{camera_b}") is None

        patched = await mem.patch(
            a.url(f"/cameras/{camera_a}"), json={"location": "north"}, headers=a.headers
        )
        assert patched.status_code == 200
        assert await cache.get(a.tenant.id, f"camera:{camera_a}") is None
        assert (await mem.get(a.url(f"/cameras/{camera_a}"), headers=a.headers)).json()["location"] == "north"

        deleted = await mem.delete(a.url(f"/cameras/{camera_a}"), headers=a.headers)
        assert deleted.status_code == 204
        assert await cache.get(a.tenant.id, "tenant") is None  # the delete invalidated the tenant
        assert (await mem.get(a.url(f"/cameras/{camera_a}"), headers=a.headers)).status_code == 404
        assert await cache.get(b.tenant.id, f"camera:{camera_b}") is not None  # B's entries are untouched
