"""A small cache with tenant-prefixed keys: in process by default, Redis when configured.

Keys are ``t:{tenant_id}:{name}`` (tenant data) or ``g:{name}`` (global), so one tenant's entries
can be dropped together and never collide with another's. Values are JSON-serialisable. In Redis
they live under ``camcount:{namespace}:`` (the namespace is the main database's name, so
deployments or test runs sharing one Redis never see each other's tenants, whose ids overlap).

Invalidation: writers call :meth:`Cache.invalidate_tenant` after committing a change. The memory
cache drops the tenant's entries; the Redis cache deletes them in Redis and publishes the tenant
id on ``camcount:invalidate``, which every API process subscribes to so it can drop its own
in-process copies (the tenant resolver's, see :mod:`camcount.tenancy.resolution`) at once. The
channel is ``camcount:{namespace}:invalidate``.
Without Redis, other processes notice a change when their short TTL expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from camcount.config import Settings

log = logging.getLogger("camcount.cache")

InvalidationCallback = Callable[[int | None], None]
CHANNEL = "camcount:invalidate"
REDIS_PREFIX = "camcount:"


def tenant_key(tenant_id: int | None, name: str) -> str:
    return f"t:{tenant_id}:{name}" if tenant_id is not None else f"g:{name}"


class Cache(ABC):
    """get/set/delete by (tenant, name); invalidate a tenant; listen to invalidations."""

    def __init__(self) -> None:
        self._listeners: list[InvalidationCallback] = []

    def on_invalidate(self, callback: InvalidationCallback) -> None:
        """``callback(tenant_id)`` runs when a tenant is invalidated here or (Redis) in any process."""
        self._listeners.append(callback)

    def _notify(self, tenant_id: int | None) -> None:
        for callback in self._listeners:
            callback(tenant_id)

    @abstractmethod
    async def get(self, tenant_id: int | None, name: str) -> Any | None: ...

    @abstractmethod
    async def set(self, tenant_id: int | None, name: str, value: Any, ttl: float) -> None: ...

    @abstractmethod
    async def delete(self, tenant_id: int | None, name: str) -> None: ...

    @abstractmethod
    async def invalidate_tenant(self, tenant_id: int | None) -> None:
        """Drop every entry of the tenant (``None``: all entries) in every process that shares it."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryCache(Cache):
    """Per-process TTL cache, bounded: the oldest entries go first when full."""

    def __init__(self, max_entries: int = 100_000) -> None:
        super().__init__()
        self._data: dict[str, tuple[float, Any]] = {}
        self._max = max_entries

    async def get(self, tenant_id: int | None, name: str) -> Any | None:
        key = tenant_key(tenant_id, name)
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return entry[1]

    async def set(self, tenant_id: int | None, name: str, value: Any, ttl: float) -> None:
        if len(self._data) >= self._max:
            for key in list(self._data)[: self._max // 10 or 1]:
                del self._data[key]
        self._data[tenant_key(tenant_id, name)] = (time.monotonic() + ttl, value)

    async def delete(self, tenant_id: int | None, name: str) -> None:
        self._data.pop(tenant_key(tenant_id, name), None)

    async def invalidate_tenant(self, tenant_id: int | None) -> None:
        if tenant_id is None:
            self._data.clear()
        else:
            prefix = tenant_key(tenant_id, "")
            for key in [k for k in self._data if k.startswith(prefix)]:
                del self._data[key]
        self._notify(tenant_id)


class RedisCache(Cache):
    """Shared by every API process; invalidations are also broadcast with pub/sub."""

    def __init__(self, url: str, namespace: str = "") -> None:
        super().__init__()
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url)
        self._listener: asyncio.Task[None] | None = None
        self.prefix = f"{REDIS_PREFIX}{namespace}:" if namespace else REDIS_PREFIX
        self.channel = f"{self.prefix}invalidate" if namespace else CHANNEL

    async def start(self) -> None:
        await self._redis.ping()
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self.channel)
        self._listener = asyncio.create_task(self._listen(pubsub), name="camcount-cache-invalidation")

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except (aioredis.ConnectionError, OSError):
                    log.warning("lost the cache invalidation channel; retrying")
                    await asyncio.sleep(1.0)
                    continue
                if message is None:
                    continue
                data = message.get("data", b"")
                text = data.decode() if isinstance(data, bytes) else str(data)
                self._notify(int(text) if text.isdigit() else None)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def get(self, tenant_id: int | None, name: str) -> Any | None:
        raw = await self._redis.get(self.prefix + tenant_key(tenant_id, name))
        return None if raw is None else json.loads(raw)

    async def set(self, tenant_id: int | None, name: str, value: Any, ttl: float) -> None:
        await self._redis.set(
            self.prefix + tenant_key(tenant_id, name), json.dumps(value), px=max(1, int(ttl * 1000))
        )

    async def delete(self, tenant_id: int | None, name: str) -> None:
        await self._redis.delete(self.prefix + tenant_key(tenant_id, name))

    async def invalidate_tenant(self, tenant_id: int | None) -> None:
        pattern = self.prefix + (tenant_key(tenant_id, "*") if tenant_id is not None else "[tg]:*")
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self._redis.unlink(*batch)
                batch = []
        if batch:
            await self._redis.unlink(*batch)
        self._notify(tenant_id)  # at once here; other processes through the channel
        await self._redis.publish(self.channel, "" if tenant_id is None else str(tenant_id))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()


def make_cache(settings: Settings, namespace: str = "") -> Cache:
    """Redis when ``CAMCOUNT_REDIS_URL`` is set, else in process. ``namespace``: see the module doc."""
    if settings.redis_url is not None:
        return RedisCache(settings.redis_url.get_secret_value(), namespace)
    return MemoryCache()
