"""How long a tenant keeps raw events: its ``retention_days`` setting, or else its plan's.

Ingestion refuses events older than this: the retention job deletes their idempotency keys, so
an older event could no longer be recognised as a retry and would be counted twice in the
rollups, which are kept longer. Read through a short in-process cache (the hot path).
"""

from __future__ import annotations

import time

from camcount.db.pools import Database

CACHE_SECONDS = 30.0

_QUERY = """
SELECT coalesce((SELECT c.value::integer FROM control.tenant_configs c
                 WHERE c.tenant_id = t.id AND c.key = 'retention_days' AND c.value_type = 'integer'
                   AND c.value ~ '^[0-9]{1,6}$' AND c.value::integer > 0), p.retention_days)
FROM control.tenants t JOIN control.plans p ON p.code = t.plan
WHERE t.id = %s
"""

_cache: dict[int, tuple[float, int]] = {}


async def event_retention_days(db: Database, tenant_id: int) -> int | None:
    """The tenant's raw-event retention in days (None: unknown tenant, no limit applied)."""
    cached = _cache.get(tenant_id)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    pool = await db.app_pool()
    async with pool.connection() as conn:
        row = await (await conn.execute(_QUERY, (tenant_id,))).fetchone()
    if row is None:
        return None
    _cache[tenant_id] = (time.monotonic(), int(row[0]))
    return int(row[0])
