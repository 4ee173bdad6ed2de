"""Per-tenant ingestion counters: what the events route reports after each batch.

``record_ingestion_outcomes`` adds the batch's outcomes to the tenant's hourly row in
``control.ingestion_counters`` (the source of the error rate in tenant metrics and health) and to
the Prometheus counters. Call it once per batch, after the batch committed::

    await record_ingestion_outcomes(db, tenant.id, accepted=a, duplicate=d, rejected=r, now=now)
"""

from __future__ import annotations

from datetime import UTC, datetime

from camcount.db.pools import Database
from camcount.monitoring import metrics

_UPSERT = """
INSERT INTO control.ingestion_counters AS c (tenant_id, hour, accepted, duplicate, rejected)
VALUES (%s, date_trunc('hour', %s::timestamptz, 'UTC'), %s, %s, %s)
ON CONFLICT (tenant_id, hour) DO UPDATE
SET accepted = c.accepted + EXCLUDED.accepted, duplicate = c.duplicate + EXCLUDED.duplicate,
    rejected = c.rejected + EXCLUDED.rejected, updated_at = now()
"""


async def record_ingestion_outcomes(
    db: Database, tenant_id: int, *, accepted: int, duplicate: int, rejected: int, now: datetime | None = None
) -> None:
    """Count one batch for the tenant (control plane) and for Prometheus (this process)."""
    metrics.record_ingestion(accepted, duplicate, rejected)
    if accepted + duplicate + rejected == 0:
        return
    pool = await db.app_pool()
    async with pool.connection() as conn:
        await conn.execute(_UPSERT, (tenant_id, now or datetime.now(UTC), accepted, duplicate, rejected))
