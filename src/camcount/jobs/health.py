"""The ``health`` job: check every tenant and keep the latest result in ``control.tenant_health``."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

from camcount.jobs.registry import JobContext, job
from camcount.monitoring.health import HealthStatus, check_all, save_snapshot

logger = logging.getLogger("camcount.jobs.health")


@job("health", every=timedelta(minutes=5))
async def health_job(ctx: JobContext) -> dict[str, Any]:
    """Run the tenant health checks and store a snapshot (read by /metrics)."""
    results = await check_all(ctx.db, now=ctx.now)
    await save_snapshot(ctx.db, results)
    for result in results:
        if result.status is not HealthStatus.HEALTHY:
            logger.warning(
                "tenant %s", result.status,
                extra={"tenant": result.tenant.slug, "issues": [i.reason for i in result.issues]},
            )  # fmt: skip
    by_status = Counter(str(r.status) for r in results)
    return {"tenants": len(results), **{s.value: by_status.get(s.value, 0) for s in HealthStatus}}
