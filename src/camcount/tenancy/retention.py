"""How long a tenant keeps raw events: its ``retention_days`` setting, or else its plan's.

Ingestion refuses events older than this: the retention job deletes their idempotency keys, so
an older event could no longer be recognised as a retry and would be counted twice in the
rollups, which are kept longer. Read on every ingested batch, so it is cached with the tenant's
other entries (``t:{tenant}:retention_days`` in :mod:`camcount.cache`: in process, or Redis shared
by every API process), and dropped with them when the tenant's configuration or plan changes.
"""

from __future__ import annotations

from camcount.cache import Cache
from camcount.db.pools import Database

CACHE_SECONDS = 30.0
CACHE_NAME = "retention_days"

_QUERY = """
SELECT coalesce((SELECT c.value::integer FROM control.tenant_configs c
                 WHERE c.tenant_id = t.id AND c.key = 'retention_days' AND c.value_type = 'integer'
                   AND c.value ~ '^[0-9]{1,6}$' AND c.value::integer > 0), p.retention_days)
FROM control.tenants t JOIN control.plans p ON p.code = t.plan
WHERE t.id = %s
"""


async def event_retention_days(db: Database, cache: Cache, tenant_id: int) -> int | None:
    """The tenant's raw-event retention in days (None: unknown tenant, no limit applied)."""
    cached = await cache.get(tenant_id, CACHE_NAME)
    if isinstance(cached, int):
        return cached
    async with db.app_control() as conn:
        row = await (await conn.execute(_QUERY, (tenant_id,))).fetchone()
    if row is None:
        return None
    days = int(row[0])
    await cache.set(tenant_id, CACHE_NAME, days, CACHE_SECONDS)
    return days
