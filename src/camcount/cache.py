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

Redis is an accelerator, never a dependency of an answer: when it is unreachable or slow (every
command has a short timeout), a read is a miss, a write is skipped and the request is served
from PostgreSQL; a failed invalidation still drops this process's copies, and the other processes'
copies and Redis's own entries expire within their TTL. After a failure the process leaves Redis
alone for ``_RETRY_AFTER`` seconds (a circuit breaker), so a hung Redis costs one timeout per
process and pause, not one per request. A warning is logged at most every ``_WARN_EVERY`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from camcount.config import Settings

log = logging.getLogger("camcount.cache")

InvalidationCallback = Callable[[int | None], None]
CHANNEL = "camcount:invalidate"
REDIS_PREFIX = "camcount:"
# A cache answer slower than this is worth less than asking PostgreSQL (a hung Redis would
# otherwise hold every request: redis-py waits forever by default).
REDIS_TIMEOUT_SECONDS = 0.5
_WARN_EVERY = 10.0
_RETRY_AFTER = 2.0
_REDIS_DOWN = (aioredis.RedisError, OSError)


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

    async def ping(self) -> None:
        """Raise if the cache cannot be reached (its commands themselves never raise for that)."""
        return None

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
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._listener: asyncio.Task[None] | None = None
        self._warned_at = -_WARN_EVERY
        self._skip_until = 0.0  # monotonic: Redis failed; do not ask it again before then
        self.prefix = f"{REDIS_PREFIX}{namespace}:" if namespace else REDIS_PREFIX
        self.channel = f"{self.prefix}invalidate" if namespace else CHANNEL

    async def ping(self) -> None:
        await self._redis.ping()

    async def start(self) -> None:
        await self.ping()
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self.channel)
        self._listener = asyncio.create_task(self._listen(pubsub), name="camcount-cache-invalidation")

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except _REDIS_DOWN as error:
                    self._unavailable("listening for invalidations", error)
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

    def _unavailable(self, doing: str, error: BaseException) -> None:
        now = time.monotonic()
        self._skip_until = now + _RETRY_AFTER
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("Redis unavailable while %s (%s); serving without the shared cache", doing,
                        type(error).__name__)  # fmt: skip

    async def _attempt(self, doing: str, command: Callable[[], Awaitable[Any]]) -> Any:
        """``command()``'s answer; None when Redis fails, or failed less than _RETRY_AFTER ago."""
        if time.monotonic() < self._skip_until:
            return None
        try:
            return await command()
        except _REDIS_DOWN as error:
            self._unavailable(doing, error)
            return None

    async def get(self, tenant_id: int | None, name: str) -> Any | None:
        key = self.prefix + tenant_key(tenant_id, name)
        raw = await self._attempt("reading", lambda: self._redis.get(key))
        return None if raw is None else json.loads(raw)

    async def set(self, tenant_id: int | None, name: str, value: Any, ttl: float) -> None:
        key, data = self.prefix + tenant_key(tenant_id, name), json.dumps(value)
        await self._attempt("writing", lambda: self._redis.set(key, data, px=max(1, int(ttl * 1000))))

    async def delete(self, tenant_id: int | None, name: str) -> None:
        key = self.prefix + tenant_key(tenant_id, name)
        await self._attempt("deleting", lambda: self._redis.delete(key))

    async def invalidate_tenant(self, tenant_id: int | None) -> None:
        pattern = self.prefix + (tenant_key(tenant_id, "*") if tenant_id is not None else "[tg]:*")
        try:
            batch: list[bytes] = []
            async for key in self._redis.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await self._redis.unlink(*batch)
                    batch = []
            if batch:
                await self._redis.unlink(*batch)
        except _REDIS_DOWN as error:
            self._unavailable("invalidating (its entries expire with their TTL)", error)
        # After Redis's entries are gone, so a request in between cannot copy a stale one back.
        self._notify(tenant_id)  # at once here; other processes through the channel
        try:
            await self._redis.publish(self.channel, "" if tenant_id is None else str(tenant_id))
        except _REDIS_DOWN as error:
            self._unavailable(
                "announcing an invalidation (other processes see it when their TTL expires)", error
            )

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
