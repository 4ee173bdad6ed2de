"""Recent aggregates (``GET /counts`` pages) cached per tenant.

Answers are cached under the tenant's *data generation*, a random token kept in the cache itself
(``t:{tenant}:counts-gen``), and a digest of the query. Whatever changes counts (a committed
ingestion that stored events, a site's time zone or business hours) sets a new generation, so
every cached answer of that tenant is stale at once, in every process sharing the cache (Redis).
A tenant-wide invalidation drops the generation with the entries. Entries also expire after
``TTL_SECONDS``, which bounds what any missed path could serve.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from camcount.cache import Cache

GENERATION = "counts-gen"
TTL_SECONDS = 30.0


async def cached_answer(
    cache: Cache, tenant_id: int, request_key: str, compute: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """The cached answer for ``request_key`` in the tenant's current generation, or a fresh one."""
    generation = await cache.get(tenant_id, GENERATION)
    if generation is None:
        generation = secrets.token_hex(8)
        await cache.set(tenant_id, GENERATION, generation, TTL_SECONDS * 100)
    name = f"counts:{generation}:{hashlib.sha256(request_key.encode()).hexdigest()[:32]}"
    hit = await cache.get(tenant_id, name)
    if isinstance(hit, dict):
        return hit
    answer = await compute()
    await cache.set(tenant_id, name, answer, TTL_SECONDS)
    return answer


async def counts_changed(cache: Cache, tenant_id: int) -> None:
    """Make every cached aggregate of the tenant stale (call after committing the change)."""
    await cache.set(tenant_id, GENERATION, secrets.token_hex(8), TTL_SECONDS * 100)
